//! The EKS side of a KubernetesRuntimeInstance (spec 3.4, KRI Created and Deleted): the
//! AwsEksKubernetesRuntimeInstance the aws controller provisions the cluster from, created
//! once (looked up by runtime before it is POSTed, so a retry adopts it) and deleted with the
//! runtime (which starts the aws controller's teardown).

use tracing::info;

use crate::engine::ReconcileError;
use crate::threeport::api::ThreeportApi;
use crate::threeport::location::aws_region_for_location;
use crate::threeport::models::{
    AwsEksKubernetesRuntimeDefinition, AwsEksKubernetesRuntimeInstance, Filter, Instance,
    KubernetesRuntimeInstance, TypedApi,
};

/// The EKS instance Threeport creates for runtime `kri_id` from the EKS definition `eks_def`:
/// the runtime's name, and the AWS region of its location.
pub fn eks_instance(
    kri_id: u64,
    kri: &KubernetesRuntimeInstance,
    eks_def: u64,
) -> Result<AwsEksKubernetesRuntimeInstance, ReconcileError> {
    let location = kri.location.as_deref().unwrap_or_default();
    let region = aws_region_for_location(location).ok_or_else(|| {
        ReconcileError::permanent(format!(
            "kubernetes runtime instance {kri_id}: Location {location:?} maps to no AWS region"
        ))
    })?;
    Ok(AwsEksKubernetesRuntimeInstance {
        instance: Instance {
            name: kri.instance.name.clone(),
            ..Default::default()
        },
        region: Some(region.to_string()),
        aws_eks_kubernetes_runtime_definition_id: Some(eks_def),
        kubernetes_runtime_instance_id: Some(kri_id),
        ..Default::default()
    })
}

/// Make sure runtime `kri_id` of the definition `krd_id` has its EKS instance. The EKS
/// definition is made by the definition's reconcile; until it exists this is a transient
/// error (retried with backoff).
pub async fn ensure_eks_instance(
    api: &dyn ThreeportApi,
    kri_id: u64,
    kri: &KubernetesRuntimeInstance,
    krd_id: u64,
) -> Result<(), ReconcileError> {
    let existing: Vec<AwsEksKubernetesRuntimeInstance> = api
        .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", kri_id)])
        .await?;
    if !existing.is_empty() {
        return Ok(());
    }
    let definitions: Vec<AwsEksKubernetesRuntimeDefinition> = api
        .list_objects(&[Filter::eq("KubernetesRuntimeDefinitionID", krd_id)])
        .await?;
    let eks_def = definitions
        .first()
        .and_then(|d| d.common.id)
        .ok_or_else(|| {
            ReconcileError::transient(format!(
                "kubernetes runtime definition {krd_id} has no EKS runtime definition yet"
            ))
        })?;
    let created = api
        .create_object(&eks_instance(kri_id, kri, eks_def)?)
        .await?;
    info!(aws_eks_kubernetes_runtime_instance = ?created.common.id, "EKS runtime instance created");
    Ok(())
}

/// Delete runtime `kri_id`'s EKS instance, if it has one (the API then schedules it and the
/// aws controller tears the cluster down); gone already is fine.
pub async fn delete_eks_instance(
    api: &dyn ThreeportApi,
    kri_id: u64,
) -> Result<(), ReconcileError> {
    let existing: Vec<AwsEksKubernetesRuntimeInstance> = api
        .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", kri_id)])
        .await?;
    for eks in existing {
        let Some(id) = eks.common.id else { continue };
        match api
            .delete_object::<AwsEksKubernetesRuntimeInstance>(id)
            .await
        {
            Ok(_) => info!(
                aws_eks_kubernetes_runtime_instance = id,
                "EKS runtime instance deleted"
            ),
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcilers::testing::FakeApi;
    use crate::retry::RetryClass;
    use crate::threeport::api::Method;

    fn runtime(location: &str) -> KubernetesRuntimeInstance {
        KubernetesRuntimeInstance {
            instance: Instance {
                name: Some("cloud-1".into()),
                ..Default::default()
            },
            location: Some(location.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_eks_instance_is_created_once_with_the_locations_region_and_deleted() {
        let api = FakeApi::new();
        let kri = runtime("Europe:Frankfurt");
        let kri_id = api.insert(&kri);
        let krd_id = 7;
        let err = ensure_eks_instance(api.as_ref(), kri_id, &kri, krd_id)
            .await
            .expect_err("no EKS definition yet");
        assert_eq!(err.class, RetryClass::Transient);
        let eks_def = api.insert(&AwsEksKubernetesRuntimeDefinition {
            kubernetes_runtime_definition_id: Some(krd_id),
            ..Default::default()
        });
        for _ in 0..2 {
            ensure_eks_instance(api.as_ref(), kri_id, &kri, krd_id)
                .await
                .expect("ensured");
        }
        let eks: Vec<AwsEksKubernetesRuntimeInstance> = api.all();
        assert_eq!(eks.len(), 1, "a retry adopts it");
        assert_eq!(eks[0].region.as_deref(), Some("eu-central-1"));
        assert_eq!(eks[0].instance.name.as_deref(), Some("cloud-1"));
        assert_eq!(
            eks[0].aws_eks_kubernetes_runtime_definition_id,
            Some(eks_def)
        );
        assert_eq!(eks[0].kubernetes_runtime_instance_id, Some(kri_id));

        delete_eks_instance(api.as_ref(), kri_id)
            .await
            .expect("deleted");
        delete_eks_instance(api.as_ref(), kri_id)
            .await
            .expect("again");
        assert_eq!(
            api.count(Method::Delete, "/v0/aws-eks-kubernetes-runtime-instances/"),
            1
        );
        assert!(api.all::<AwsEksKubernetesRuntimeInstance>().is_empty());
    }

    #[test]
    fn a_location_without_a_region_is_permanent() {
        let err = eks_instance(1, &runtime("Mars:Olympus"), 2).expect_err("no region");
        assert_eq!(err.class, RetryClass::Permanent);
        assert!(err.to_string().contains("Mars:Olympus"), "{err}");
    }
}
