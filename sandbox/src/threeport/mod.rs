//! Placeholder: the sandbox Threeport API is being written.
