"""The generator service: Wan text-to-video through diffusers, served over gRPC."""
