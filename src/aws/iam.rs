//! IAM roles as every build here makes and removes them (the EKS cluster's roles, the S3
//! workload role): made or adopted by name, tagged with the build's tags, policies attached
//! once; removed with every attached policy detached first.

use aws_sdk_iam::types::Tag;
use aws_sdk_iam::Client;
use serde_json::Value;

use super::eks::inventory::RoleInventory;
use super::eks::Tags;
use super::error::{aws_err, tolerate, AwsError};

/// The build's tags as IAM tags.
pub fn iam_tags(tags: &Tags) -> Result<Vec<Tag>, AwsError> {
    tags.ec2()
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::conflict("iam:Tag", e.to_string()))
        })
        .collect()
}

/// A role to make.
pub struct RoleSpec<'a> {
    /// The role's name (fixed by the build, so "already exists" means an earlier run made it).
    pub name: &'a str,
    /// IAM path, if not `/`.
    pub path: Option<&'a str>,
    /// The trust (assume-role) document.
    pub trust: &'a Value,
    /// Policies to attach.
    pub policies: &'a [String],
    /// A permissions boundary.
    pub boundary: Option<&'a str>,
}

/// The role `spec` describes, made or adopted, with every policy attached (missing ones
/// only); the record of it.
pub async fn ensure_role(
    iam: &Client,
    tags: &Tags,
    spec: RoleSpec<'_>,
) -> Result<RoleInventory, AwsError> {
    let made = iam
        .create_role()
        .role_name(spec.name)
        .set_path(spec.path.map(str::to_string))
        .assume_role_policy_document(spec.trust.to_string())
        .set_permissions_boundary(spec.boundary.map(str::to_string))
        .set_tags(Some(iam_tags(tags)?))
        .send()
        .await
        .map_err(aws_err("iam:CreateRole"));
    let arn = match made {
        Ok(out) => out.role().map(|r| r.arn().to_string()),
        Err(e) if e.is(&["EntityAlreadyExists"]) => iam
            .get_role()
            .role_name(spec.name)
            .send()
            .await
            .map_err(aws_err("iam:GetRole"))?
            .role()
            .map(|r| r.arn().to_string()),
        Err(e) => return Err(e),
    }
    .ok_or_else(|| AwsError::unexpected("iam:CreateRole", "no role in the answer"))?;
    let attached = iam
        .list_attached_role_policies()
        .role_name(spec.name)
        .send()
        .await
        .map_err(aws_err("iam:ListAttachedRolePolicies"))?;
    for policy in spec.policies {
        let present = attached
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(policy.as_str()));
        if !present {
            iam.attach_role_policy()
                .role_name(spec.name)
                .policy_arn(policy)
                .send()
                .await
                .map_err(aws_err("iam:AttachRolePolicy"))?;
        }
    }
    Ok(RoleInventory {
        role_name: spec.name.to_string(),
        role_arn: arn,
        role_policy_arns: spec.policies.to_vec(),
    })
}

/// Remove the role `name`: every attached policy detached, then the role (already gone is
/// removed).
pub async fn delete_role(iam: &Client, name: &str) -> Result<(), AwsError> {
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(aws_err("iam:ListAttachedRolePolicies"));
    let attached: Vec<String> = match attached {
        Ok(out) => out
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
        Err(e) if e.is(&["NoSuchEntity"]) => Vec::new(),
        Err(e) => return Err(e),
    };
    for policy in attached {
        let r = iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(&policy)
            .send()
            .await
            .map_err(aws_err("iam:DetachRolePolicy"));
        tolerate(r, &["NoSuchEntity"])?;
    }
    let r = iam
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws_err("iam:DeleteRole"));
    tolerate(r, &["NoSuchEntity"])
}
