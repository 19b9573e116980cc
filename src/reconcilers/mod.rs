//! Threeport controllers implemented by this manager (none yet).
