//! Threeport's runtime locations and the cloud region each maps to (Threeport v0.6.1,
//! `internal/kubernetes-runtime/mapping`): a KubernetesRuntimeInstance's `Location` is
//! provider-neutral (`NorthAmerica:NewYork`), and a controller that needs an AWS region (the
//! gateway's Route 53 solver, EKS) maps it with this table.

/// `(Location, AWS region)`, in Threeport's order.
const LOCATIONS: &[(&str, &str)] = &[
    ("Local", "us-east-1"),
    ("NorthAmerica:NewYork", "us-east-1"),
    ("NorthAmerica:Chicago", "us-east-2"),
    ("NorthAmerica:LosAngeles", "us-west-1"),
    ("NorthAmerica:Seattle", "us-west-2"),
    ("NorthAmerica:Toronto", "ca-central-1"),
    ("Asia:HongKong", "ap-east-1"),
    ("Asia:Hyderabad", "ap-south-2"),
    ("Asia:Jakarta", "ap-southeast-3"),
    ("Asia:Mumbai", "ap-south-1"),
    ("Asia:Osaka", "ap-northeast-3"),
    ("Asia:Seoul", "ap-northeast-2"),
    ("Asia:Singapore", "ap-southeast-1"),
    ("Asia:Tokyo", "ap-northeast-1"),
    ("Asia:Manama", "me-south-1"),
    ("Asia:Dubai", "me-central-1"),
    ("Oceana:Sydney", "ap-southeast-2"),
    ("Oceana:Melbourne", "ap-southeast-4"),
    ("Europe:Frankfurt", "eu-central-1"),
    ("Europe:Dublin", "eu-west-1"),
    ("Europe:London", "eu-west-2"),
    ("Europe:Milan", "eu-south-1"),
    ("Europe:Paris", "eu-west-3"),
    ("Europe:Madrid", "eu-south-2"),
    ("Europe:Stockholm", "eu-north-1"),
    ("Europe:Zurich", "eu-central-2"),
    ("SouthAmerica:SaoPaulo", "sa-east-1"),
    ("Africa:CapeTown", "af-south-1"),
];

/// The AWS region of a Threeport location (exact, case-sensitive match as Threeport's);
/// `None` for a location Threeport does not know.
pub fn aws_region_for_location(location: &str) -> Option<&'static str> {
    LOCATIONS
        .iter()
        .find(|(l, _)| *l == location)
        .map(|(_, region)| *region)
}

/// The Threeport location of an AWS region (the first in the table: `us-east-1` is `Local`).
pub fn location_for_aws_region(region: &str) -> Option<&'static str> {
    LOCATIONS
        .iter()
        .find(|(_, r)| *r == region)
        .map(|(location, _)| *location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_map_to_threeports_regions() {
        assert_eq!(aws_region_for_location("Local"), Some("us-east-1"));
        assert_eq!(
            aws_region_for_location("Europe:Frankfurt"),
            Some("eu-central-1")
        );
        assert_eq!(aws_region_for_location("europe:frankfurt"), None);
        assert_eq!(aws_region_for_location("Mars:Olympus"), None);
        assert_eq!(location_for_aws_region("us-east-1"), Some("Local"));
        assert_eq!(
            location_for_aws_region("us-west-2"),
            Some("NorthAmerica:Seattle")
        );
        assert_eq!(LOCATIONS.len(), 28);
    }
}
