"""Generated gRPC stubs (protos/videophy_bench/proto/v1 -> v1/); do not edit."""
