//! S3 buckets as nukleros aws-builder v0.4.7 builds them for Threeport (spec 3.6): a
//! versioned bucket `<name>-<uuid>`, an access point `<name>` limited to the cluster's VPC,
//! the bucket's ACL (public-read or private), and a policy and role
//! `<service account>-<suffix>` that the workload's service account assumes (IRSA).
//!
//! aws-builder draws the bucket's UUID and the role's suffix anew on every attempt, so a
//! retry makes a second bucket. Here the names are drawn once and recorded in the inventory
//! (aws-builder's `S3Inventory`) before anything is made with them; a resumed build makes
//! the same bucket and role, and "already yours" counts as made.

use aws_sdk_s3::types::{
    BucketCannedAcl, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ObjectOwnership, Tagging, VersioningConfiguration,
};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::eks::identity::service_account_trust;
use super::eks::inventory::RoleInventory;
use super::eks::{Progress, Tags};
use super::error::{aws_err, tolerate, AwsError};
use super::iam::{delete_role, ensure_role, iam_tags, RoleSpec};
use super::session::AwsSession;

/// `S3Inventory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3Inventory {
    /// The AWS account ID (for the access point).
    pub aws_account: String,
    /// The region.
    pub region: String,
    /// `<name>-<uuid>`, drawn once.
    pub bucket_name: String,
    /// `<name>`, once the access point exists.
    pub access_point_name: String,
    /// The bucket policy, once made.
    pub policy_arn: String,
    /// The workload's role; its name is drawn once, its ARN set once it exists.
    pub role: RoleInventory,
    /// Keys of a newer writer, kept.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl super::Inventory for S3Inventory {}

/// What the bucket is for.
#[derive(Debug, Clone)]
pub struct S3Spec {
    /// The cluster's VPC (the access point's network).
    pub vpc_id: String,
    /// `PublicReadAccess`.
    pub public_read: bool,
    /// The workload's service account and its namespace.
    pub service_account: (String, String),
    /// The cluster's OIDC issuer.
    pub oidc_issuer: String,
}

/// The next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Step {
    /// Draw and record the bucket's and role's names (no AWS call).
    Names,
    /// The bucket with versioning, tags and ACL, then the access point.
    Bucket,
    /// The policy.
    Policy,
    /// The role.
    Role,
    /// Built.
    Complete,
}

/// The first unrecorded step.
pub fn next_step(inv: &S3Inventory) -> S3Step {
    if inv.bucket_name.is_empty() || inv.role.role_name.is_empty() {
        S3Step::Names
    } else if inv.access_point_name.is_empty() {
        S3Step::Bucket
    } else if inv.policy_arn.is_empty() {
        S3Step::Policy
    } else if inv.role.role_arn.is_empty() {
        S3Step::Role
    } else {
        S3Step::Complete
    }
}

/// Draw the names: `<name>-<uuid v4>` and `<service account>-<12 of [a-z0-9]>`.
pub fn draw_names(inv: &mut S3Inventory, tags: &Tags, service_account: &str) {
    if inv.bucket_name.is_empty() {
        inv.bucket_name = format!("{}-{}", tags.name, uuid::Uuid::new_v4());
    }
    if inv.role.role_name.is_empty() {
        let suffix = Alphanumeric
            .sample_string(&mut rand::thread_rng(), 12)
            .to_ascii_lowercase();
        inv.role.role_name = format!("{service_account}-{suffix}");
    }
}

/// Run one step.
pub async fn step(
    s: &AwsSession,
    tags: &Tags,
    spec: &S3Spec,
    next: S3Step,
    inv: &mut S3Inventory,
) -> Result<Progress, AwsError> {
    inv.region = s.region.clone();
    inv.aws_account = s.account_id.clone();
    match next {
        S3Step::Names => {
            draw_names(inv, tags, &spec.service_account.0);
            Ok(Progress::Advanced)
        }
        S3Step::Bucket => bucket(s, tags, spec, inv).await,
        S3Step::Policy => policy(s, tags, inv).await,
        S3Step::Role => role(s, tags, spec, inv).await,
        S3Step::Complete => Ok(Progress::Advanced),
    }
}

async fn bucket(
    s: &AwsSession,
    tags: &Tags,
    spec: &S3Spec,
    inv: &mut S3Inventory,
) -> Result<Progress, AwsError> {
    let s3 = s.s3();
    let mut create = s3
        .create_bucket()
        .bucket(&inv.bucket_name)
        .object_ownership(ObjectOwnership::ObjectWriter);
    if s.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(s.region.as_str()))
                .build(),
        );
    }
    match create.send().await.map_err(aws_err("s3:CreateBucket")) {
        Ok(_) => {}
        Err(e) if e.is(&["BucketAlreadyOwnedByYou"]) => {}
        Err(e) => return Err(e),
    }
    s3.put_bucket_versioning()
        .bucket(&inv.bucket_name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(aws_err("s3:PutBucketVersioning"))?;
    let tag_set = tags
        .ec2()
        .into_iter()
        .map(|(k, v)| {
            aws_sdk_s3::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::conflict("s3:PutBucketTagging", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    s3.put_bucket_tagging()
        .bucket(&inv.bucket_name)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .map_err(|e| AwsError::conflict("s3:PutBucketTagging", e.to_string()))?,
        )
        .send()
        .await
        .map_err(aws_err("s3:PutBucketTagging"))?;
    if spec.public_read {
        s3.delete_public_access_block()
            .bucket(&inv.bucket_name)
            .send()
            .await
            .map_err(aws_err("s3:DeletePublicAccessBlock"))?;
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "PublicReadGetObject", "Effect": "Allow", "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{}/*", inv.bucket_name)
            }]
        });
        s3.put_bucket_policy()
            .bucket(&inv.bucket_name)
            .policy(policy.to_string())
            .send()
            .await
            .map_err(aws_err("s3:PutBucketPolicy"))
            .map_err(|e| {
                // Refused while the public access block's removal propagates (aws-builder
                // retries for 44 s): retried with backoff.
                if e.is(&["AccessDenied"]) {
                    e.transient()
                } else {
                    e
                }
            })?;
    }
    s3.put_bucket_acl()
        .bucket(&inv.bucket_name)
        .acl(if spec.public_read {
            BucketCannedAcl::PublicRead
        } else {
            BucketCannedAcl::Private
        })
        .send()
        .await
        .map_err(aws_err("s3:PutBucketAcl"))?;

    let control = s.s3_control();
    let made = control
        .create_access_point()
        .account_id(&s.account_id)
        .name(&tags.name)
        .bucket(&inv.bucket_name)
        .vpc_configuration(
            aws_sdk_s3control::types::VpcConfiguration::builder()
                .vpc_id(&spec.vpc_id)
                .build()
                .map_err(|e| AwsError::conflict("s3control:CreateAccessPoint", e.to_string()))?,
        )
        .send()
        .await
        .map_err(aws_err("s3control:CreateAccessPoint"));
    match made {
        Ok(_) => {}
        Err(e) if e.is(&["AccessPointAlreadyOwnedByYou"]) => {}
        Err(e) => return Err(e),
    }
    inv.access_point_name = tags.name.clone();
    Ok(Progress::Advanced)
}

/// The policy's document: read and list the bucket, write and delete its objects.
fn bucket_policy(bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}/*"), format!("arn:aws:s3:::{bucket}")]
        }, {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"],
            "Resource": [format!("arn:aws:s3:::{bucket}/*")]
        }]
    })
}

async fn policy(s: &AwsSession, tags: &Tags, inv: &mut S3Inventory) -> Result<Progress, AwsError> {
    let iam = s.iam();
    let name = inv.role.role_name.clone();
    let made = iam
        .create_policy()
        .policy_name(&name)
        .description("Allow read, create, update and delete of objects in specified bucket")
        .policy_document(bucket_policy(&inv.bucket_name).to_string())
        .set_tags(Some(iam_tags(tags)?))
        .send()
        .await
        .map_err(aws_err("iam:CreatePolicy"));
    let arn = match made {
        Ok(out) => out.policy().and_then(|p| p.arn()).map(str::to_string),
        // Every page: an account may have far more than the 100 of one.
        Err(e) if e.is(&["EntityAlreadyExists"]) => {
            let mut pages = iam
                .list_policies()
                .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                .into_paginator()
                .send();
            let mut found = None;
            while let Some(page) = pages.next().await {
                let page = page.map_err(aws_err("iam:ListPolicies"))?;
                if let Some(arn) = page
                    .policies()
                    .iter()
                    .find(|p| p.policy_name() == Some(name.as_str()))
                    .and_then(|p| p.arn())
                {
                    found = Some(arn.to_string());
                    break;
                }
            }
            found
        }
        Err(e) => return Err(e),
    }
    .ok_or_else(|| AwsError::unexpected("iam:CreatePolicy", "no policy ARN"))?;
    inv.policy_arn = arn;
    Ok(Progress::Advanced)
}

async fn role(
    s: &AwsSession,
    tags: &Tags,
    spec: &S3Spec,
    inv: &mut S3Inventory,
) -> Result<Progress, AwsError> {
    let iam = s.iam();
    let (account, namespace) = &spec.service_account;
    let trust = service_account_trust(&s.account_id, &spec.oidc_issuer, namespace, account);
    let name = inv.role.role_name.clone();
    let policy = inv.policy_arn.clone();
    inv.role = ensure_role(
        &iam,
        tags,
        RoleSpec {
            name: &name,
            path: None,
            trust: &trust,
            policies: std::slice::from_ref(&policy),
            // The bucket policy bounds the role too, as aws-builder makes it.
            boundary: Some(&policy),
        },
    )
    .await?;
    Ok(Progress::Advanced)
}

/// Remove everything, in reverse: access point, bucket (emptied first: every object version
/// and delete marker, which aws-builder does not do, so its delete fails on a used bucket),
/// role, policy. Each part is cleared from `inv` once gone.
pub async fn delete_all(s: &AwsSession, inv: &mut S3Inventory) -> Result<(), AwsError> {
    if !inv.access_point_name.is_empty() {
        let control = s.s3_control();
        let r = control
            .delete_access_point()
            .account_id(&s.account_id)
            .name(&inv.access_point_name)
            .send()
            .await
            .map_err(aws_err("s3control:DeleteAccessPoint"));
        tolerate(r, &["NoSuchAccessPoint"])?;
        inv.access_point_name.clear();
    }
    if !inv.bucket_name.is_empty() {
        empty_bucket(s, &inv.bucket_name).await?;
        let r = s
            .s3()
            .delete_bucket()
            .bucket(&inv.bucket_name)
            .send()
            .await
            .map_err(aws_err("s3:DeleteBucket"));
        tolerate(r, &["NoSuchBucket"])?;
        inv.bucket_name.clear();
    }
    if !inv.role.role_name.is_empty() {
        delete_role(&s.iam(), &inv.role.role_name).await?;
        inv.role = RoleInventory::default();
    }
    if !inv.policy_arn.is_empty() {
        let r = s
            .iam()
            .delete_policy()
            .policy_arn(&inv.policy_arn)
            .send()
            .await
            .map_err(aws_err("iam:DeletePolicy"));
        tolerate(r, &["NoSuchEntity"])?;
        inv.policy_arn.clear();
    }
    Ok(())
}

/// Delete every object version and delete marker of `bucket` (a missing bucket is empty).
async fn empty_bucket(s: &AwsSession, bucket: &str) -> Result<(), AwsError> {
    let s3 = s.s3();
    // Bounded: 100 pages of up to 1,000 versions per attempt; a larger bucket is emptied
    // further by the next attempts (the error below is transient).
    for _ in 0..100 {
        let listed = s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .map_err(aws_err("s3:ListObjectVersions"));
        let listed = match listed {
            Ok(l) => l,
            Err(e) if e.is(&["NoSuchBucket"]) => return Ok(()),
            Err(e) => return Err(e),
        };
        let ids: Vec<aws_sdk_s3::types::ObjectIdentifier> = listed
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                listed
                    .delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        // One call per page (up to 1,000 versions), not one per object.
        s3.delete_objects()
            .bucket(bucket)
            .delete(
                aws_sdk_s3::types::Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(|e| AwsError::conflict("s3:DeleteObjects", e.to_string()))?,
            )
            .send()
            .await
            .map_err(aws_err("s3:DeleteObjects"))?;
    }
    Err(AwsError::unexpected(
        "s3:ListObjectVersions",
        format!("bucket {bucket} is still not empty"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Inventory;

    #[test]
    fn names_are_drawn_once_and_steps_follow_the_inventory() {
        let tags = Tags {
            name: "data".into(),
        };
        let mut inv = S3Inventory::default();
        assert_eq!(next_step(&inv), S3Step::Names);
        draw_names(&mut inv, &tags, "app");
        let (bucket, role) = (inv.bucket_name.clone(), inv.role.role_name.clone());
        assert!(
            bucket.starts_with("data-") && bucket.len() == "data-".len() + 36,
            "{bucket}"
        );
        assert!(
            role.starts_with("app-") && role.len() == "app-".len() + 12,
            "{role}"
        );
        assert!(role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        draw_names(&mut inv, &tags, "app");
        assert_eq!(
            (inv.bucket_name.clone(), inv.role.role_name.clone()),
            (bucket, role)
        );
        assert_eq!(next_step(&inv), S3Step::Bucket);
        inv.access_point_name = "data".into();
        assert_eq!(next_step(&inv), S3Step::Policy);
        inv.policy_arn = "arn:p".into();
        assert_eq!(next_step(&inv), S3Step::Role);
        inv.role.role_arn = "arn:r".into();
        assert_eq!(next_step(&inv), S3Step::Complete);
        let json = inv.to_value();
        for key in [
            "awsAccount",
            "region",
            "bucketName",
            "accessPointName",
            "policyArn",
            "role",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["role"]["roleName"], inv.role.role_name.as_str());
    }
}
