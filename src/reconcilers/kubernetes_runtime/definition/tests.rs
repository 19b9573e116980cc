use std::sync::Arc;

use super::*;
use crate::engine::Operation;
use crate::reconcilers::testing::{context, FakeApi};
use crate::retry::RetryClass;
use crate::threeport::api::Method;
use crate::threeport::models::Reconciliation;

fn account(name: &str, default: bool) -> AwsAccount {
    AwsAccount {
        name: Some(name.into()),
        account_id: Some("111122223333".into()),
        default_account: Some(default),
        default_region: Some("us-east-1".into()),
        ..Default::default()
    }
}

#[test]
fn the_account_is_the_named_one_or_the_default() {
    let accounts = [account("prod", false), account("dev", true)];
    let name = |r: Result<&AwsAccount, AccountError>| r.map(|a| a.name.clone().unwrap());
    assert_eq!(
        name(choose_account(&accounts, Some("prod"))),
        Ok("prod".into())
    );
    assert_eq!(name(choose_account(&accounts, None)), Ok("dev".into()));
    assert_eq!(name(choose_account(&accounts, Some(""))), Ok("dev".into()));
    assert_eq!(
        choose_account(&accounts, Some("staging")).map(|_| ()),
        Err(AccountError::NoneNamed("staging".into()))
    );
    let twins = [account("prod", false), account("prod", false)];
    assert_eq!(
        choose_account(&twins, Some("prod")).map(|_| ()),
        Err(AccountError::SeveralNamed("prod".into(), 2))
    );
    // Threeport panics here.
    assert_eq!(
        choose_account(&[], None).map(|_| ()),
        Err(AccountError::NoAccounts)
    );
    let only = [account("solo", false)];
    assert_eq!(name(choose_account(&only, None)), Ok("solo".into()));
    let undecided = [account("a", false), account("b", false)];
    let err = choose_account(&undecided, None).expect_err("ambiguous");
    assert_eq!(
        err,
        AccountError::Ambiguous {
            accounts: 2,
            defaults: 0
        }
    );
    assert!(
        err.to_string().contains("InfraProviderAccountName"),
        "{err}"
    );
}

struct Fixture {
    api: Arc<FakeApi>,
    krd: u64,
}

impl Fixture {
    fn new(provider: &str, account_name: Option<&str>) -> Self {
        let api = FakeApi::new();
        api.insert(&account("prod", false));
        api.insert(&account("dev", true));
        let krd = api.insert(&KubernetesRuntimeDefinition {
            definition: Definition {
                name: Some("cloud".into()),
                ..Default::default()
            },
            reconciliation: Reconciliation {
                reconciled: Some(false),
                ..Default::default()
            },
            infra_provider: Some(provider.into()),
            infra_provider_account_name: account_name.map(str::to_string),
            high_availability: Some(true),
            node_size: Some("Large".into()),
            node_profile: Some("MemoryOptimized".into()),
            node_maximum: Some(10),
            ..Default::default()
        });
        Fixture { api, krd }
    }

    async fn run(&self, op: Operation) -> Result<Outcome, ReconcileError> {
        let ctx = context(
            self.api.clone(),
            "KubernetesRuntimeDefinitionReconciler",
            self.krd,
            op,
            1,
        );
        let krd: KubernetesRuntimeDefinition = FakeApi::get(&self.api, self.krd).unwrap();
        let r = KubernetesRuntimeDefinitionReconciler;
        match op {
            Operation::Created => r.created(&ctx, krd).await,
            Operation::Updated => r.updated(&ctx, krd).await,
            Operation::Deleted => r.deleted(&ctx, krd).await,
        }
    }
}

#[tokio::test]
async fn eks_creates_threeports_eks_definition_once() {
    let f = Fixture::new("eks", Some("prod"));
    f.run(Operation::Created).await.expect("created");
    // A second delivery (a retry after a lost answer, a redelivery) adopts it.
    f.run(Operation::Created).await.expect("again");
    let eks: Vec<AwsEksKubernetesRuntimeDefinition> = f.api.all();
    assert_eq!(eks.len(), 1);
    let prod = f
        .api
        .all::<AwsAccount>()
        .into_iter()
        .find(|a| a.name.as_deref() == Some("prod"))
        .unwrap();
    assert_eq!(eks[0].aws_account_id, prod.common.id);
    assert_eq!(eks[0].definition.name.as_deref(), Some("cloud"));
    assert_eq!(eks[0].zone_count, Some(3), "HighAvailability");
    assert_eq!(
        eks[0].default_node_group_instance_type.as_deref(),
        Some("r6i.xlarge")
    );
    assert_eq!(eks[0].default_node_group_initial_size, Some(2));
    assert_eq!(eks[0].default_node_group_minimum_size, Some(0));
    assert_eq!(eks[0].default_node_group_maximum_size, Some(10));
    assert_eq!(eks[0].kubernetes_runtime_definition_id, Some(f.krd));
    assert_eq!(f.api.count(Method::Post, "/v0/aws-eks"), 1);
}

#[tokio::test]
async fn kind_and_reconciled_definitions_need_nothing() {
    let f = Fixture::new("kind", None);
    f.run(Operation::Created).await.expect("kind");
    let f2 = Fixture::new("eks", None);
    f2.api.update::<KubernetesRuntimeDefinition>(f2.krd, |k| {
        k.reconciliation.reconciled = Some(true);
    });
    f2.run(Operation::Created).await.expect("reconciled");
    for f in [&f, &f2] {
        assert_eq!(f.api.count(Method::Post, "/v0/"), 0);
    }
}

#[tokio::test]
async fn a_missing_account_is_permanent_and_updated_finishes_once_it_exists() {
    let f = Fixture::new("eks", Some("staging"));
    let err = f
        .run(Operation::Created)
        .await
        .expect_err("no such account");
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(err.to_string().contains("\"staging\""), "{err}");
    f.api.insert(&account("staging", false));
    f.run(Operation::Updated).await.expect("updated");
    assert_eq!(f.api.all::<AwsEksKubernetesRuntimeDefinition>().len(), 1);
}

#[tokio::test]
async fn an_unknown_size_or_provider_is_a_permanent_error_naming_it() {
    let f = Fixture::new("eks", None);
    f.api.update::<KubernetesRuntimeDefinition>(f.krd, |k| {
        k.node_size = Some("Small".into());
    });
    let err = f
        .run(Operation::Created)
        .await
        .expect_err("no MemoryOptimized Small");
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(err.to_string().contains("NodeSize \"Small\""), "{err}");
    let f = Fixture::new("gke", None);
    let err = f
        .run(Operation::Created)
        .await
        .expect_err("unknown provider");
    assert!(err.to_string().contains("\"gke\""), "{err}");
}
