// Test support: starts real redis-server processes on free loopback ports.
