"""Code every service shares: configuration, storage, errors, auth, server bootstrap, video I/O."""
