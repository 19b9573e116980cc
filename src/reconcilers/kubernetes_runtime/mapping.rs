//! Threeport's node profile and size names and the AWS machine type each maps to (Threeport
//! v0.6.1, `internal/kubernetes-runtime/mapping/node.go`), for the default node group of an EKS
//! runtime.
//!
//! Differs (spec 3.4): Threeport's table labels the memory-optimized sizes above `Medium`
//! (`r6i.*`) `ComputeOptimized` by mistake, so its lookup finds the compute-optimized `c7g`
//! row first for those and fails for `MemoryOptimized` `Large` and up. Here they are
//! `MemoryOptimized`, as their machine types say; every lookup Threeport answers gives the
//! same answer here.

/// `(NodeProfile, NodeSize, AWS machine type)`.
const MACHINE_TYPES: &[(&str, &str, &str)] = &[
    ("Balanced", "2XSmall", "t3.nano"),
    ("Balanced", "XSmall", "t3.micro"),
    ("Balanced", "Small", "t3.small"),
    ("Balanced", "Medium", "t3.medium"),
    ("Balanced", "Large", "m7i.large"),
    ("Balanced", "XLarge", "m7i.xlarge"),
    ("Balanced", "2XLarge", "m7i.2xlarge"),
    ("Balanced", "3XLarge", "m7i.4xlarge"),
    ("Balanced", "4XLarge", "m7i.8xlarge"),
    ("ComputeOptimized", "Small", "c7g.medium"),
    ("ComputeOptimized", "Medium", "c7g.large"),
    ("ComputeOptimized", "Large", "c7g.xlarge"),
    ("ComputeOptimized", "XLarge", "c7g.2xlarge"),
    ("ComputeOptimized", "2XLarge", "c7g.4xlarge"),
    ("ComputeOptimized", "3XLarge", "c7g.8xlarge"),
    ("ComputeOptimized", "4XLarge", "c7g.12xlarge"),
    ("MemoryOptimized", "Medium", "r6i.large"),
    ("MemoryOptimized", "Large", "r6i.xlarge"),
    ("MemoryOptimized", "XLarge", "r6i.2xlarge"),
    ("MemoryOptimized", "2XLarge", "r6i.4xlarge"),
    ("MemoryOptimized", "3XLarge", "r6i.8xlarge"),
    ("MemoryOptimized", "4XLarge", "r6i.12xlarge"),
];

/// The AWS machine type of a node profile and size (exact, case-sensitive names, as
/// Threeport's); `None` for a combination Threeport does not offer.
pub fn aws_machine_type(node_profile: &str, node_size: &str) -> Option<&'static str> {
    MACHINE_TYPES
        .iter()
        .find(|(profile, size, _)| *profile == node_profile && *size == node_size)
        .map(|(_, _, machine)| *machine)
}

/// The sizes offered for a profile, for error messages.
pub fn sizes_of(node_profile: &str) -> Vec<&'static str> {
    MACHINE_TYPES
        .iter()
        .filter(|(profile, _, _)| *profile == node_profile)
        .map(|(_, size, _)| *size)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_sizes_map_to_threeports_machine_types() {
        assert_eq!(aws_machine_type("Balanced", "Medium"), Some("t3.medium"));
        assert_eq!(aws_machine_type("Balanced", "4XLarge"), Some("m7i.8xlarge"));
        assert_eq!(
            aws_machine_type("ComputeOptimized", "Large"),
            Some("c7g.xlarge"),
            "Threeport's first match, unchanged"
        );
        assert_eq!(
            aws_machine_type("MemoryOptimized", "Medium"),
            Some("r6i.large")
        );
        assert_eq!(
            aws_machine_type("MemoryOptimized", "Large"),
            Some("r6i.xlarge"),
            "a lookup Threeport fails"
        );
        assert_eq!(aws_machine_type("balanced", "Medium"), None);
        assert_eq!(aws_machine_type("MemoryOptimized", "Small"), None);
        assert_eq!(sizes_of("MemoryOptimized").len(), 6);
        assert_eq!(MACHINE_TYPES.len(), 22);
    }
}
