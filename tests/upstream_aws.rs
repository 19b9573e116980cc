//! The aws and secret controllers on the real stack (issue 15): Threeport's API on PostgreSQL (which
//! encrypts the AwsAccount's keys and publishes the notifications), the manager run as
//! `threeport-manager --enable aws`, and moto as AWS behind a proxy that injects faults and
//! holds chosen calls. The AWS side is checked through the AWS API (moto directly).
//!
//! moto makes no security group for an EKS cluster (EKS does); the test plays that part by
//! making the group tagged `aws:eks:cluster-name` in the default VPC. moto's cluster CA is
//! random bytes, EKS's a PEM certificate: the proxy puts a PEM into DescribeCluster answers. moto has no EKS add-on
//! API, so the manager runs with `aws.eks_storage_addon = false` (the add-on call is covered
//! by the proxy's operation count staying zero, and by the unit tests of the plan).

mod harness;

use std::collections::HashSet;
use std::time::Duration;

use harness::aws::{moto_binary, AwsProxy, Moto, ACCOUNT_ID, REGION};
use harness::backend::{Stack, UpstreamOptions};
use harness::eks_authenticator::EksAuthenticator;
use harness::workload_env::ManagerProcess;
use harness::workload_suite::wait_until;
use serde_json::{json, Value};
use threeport_manager::aws::{AwsSession, AwsSessions};
use threeport_manager::config::AwsConfig;
use threeport_manager::threeport::models::{
    AwsAccount, SecretString, AWS_ACCOUNT, AWS_EKS_KUBERNETES_RUNTIME_DEFINITION,
    AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, AWS_OBJECT_STORAGE_BUCKET_DEFINITION,
    AWS_OBJECT_STORAGE_BUCKET_INSTANCE, AWS_RELATIONAL_DATABASE_DEFINITION,
    AWS_RELATIONAL_DATABASE_INSTANCE, KUBERNETES_RUNTIME_DEFINITION, KUBERNETES_RUNTIME_INSTANCE,
    SECRET_DEFINITION, SECRET_INSTANCE, WORKLOAD_DEFINITION, WORKLOAD_INSTANCE,
    WORKLOAD_RESOURCE_INSTANCE,
};
use threeport_manager::threeport::{ObjectType, ThreeportApi};

const LIMIT: Duration = Duration::from_secs(120);
const CLUSTER: &str = "eks1";
const RECONCILERS: [&str; 3] = [
    "AwsEksKubernetesRuntimeInstanceReconciler",
    "AwsRelationalDatabaseInstanceReconciler",
    "AwsObjectStorageBucketInstanceReconciler",
];

/// A session straight to moto, for looking at what was built.
async fn moto_session(url: &str) -> AwsSession {
    let sessions = AwsSessions::new(
        AwsConfig {
            endpoint_url: Some(url.to_string()),
            ..Default::default()
        },
        None,
    );
    let account = AwsAccount {
        account_id: Some(ACCOUNT_ID.into()),
        access_key_id: Some(SecretString("testing".into())),
        secret_access_key: Some(SecretString("testing".into())),
        ..Default::default()
    };
    sessions
        .for_account(&account, REGION)
        .await
        .expect("moto session")
}

async fn post(stack: &Stack, ty: ObjectType, body: Value) -> u64 {
    let made = stack
        .api
        .create(ty, body.clone())
        .await
        .unwrap_or_else(|e| panic!("POST {} {body}: {e}", ty.name));
    made["ID"].as_u64().expect("ID")
}

async fn get(stack: &Stack, ty: ObjectType, id: u64) -> Option<Value> {
    stack.get(ty, id).await
}

async fn wait_field(stack: &Stack, ty: ObjectType, id: u64, field: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let last = get(stack, ty, id).await.unwrap_or(Value::Null);
        if !last[field].is_null() {
            return last;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{} {id} has no {field} after {LIMIT:?}: {last}",
            ty.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_gone(stack: &Stack, ty: ObjectType, id: u64) {
    wait_until(LIMIT, &format!("{} {id} deleted", ty.name), || async {
        get(stack, ty, id).await.is_none()
    })
    .await;
}

/// The manager with Threeport's environment, AWS at `endpoint`, and short lock timings (a
/// killed replica's locks are reclaimed after 3 s).
async fn manager(stack: &Stack, endpoint: &str, log: std::path::PathBuf) -> ManagerProcess {
    let mut vars = aws_env(stack, endpoint);
    for (k, v) in [
        ("THREEPORT_MANAGER__AWS__EKS_STORAGE_ADDON", "false"),
        ("THREEPORT_MANAGER__AWS__POLL_INTERVAL", "1s"),
        ("THREEPORT_MANAGER__AWS__CALL_TIMEOUT", "30s"),
        ("THREEPORT_MANAGER__ENGINE__LOCK_RECLAIM_AFTER", "3s"),
        ("THREEPORT_MANAGER__ENGINE__HEARTBEAT_INTERVAL", "1s"),
        ("THREEPORT_MANAGER__ENGINE__LOCK_RENEW_INTERVAL", "1s"),
    ] {
        vars.push((k.to_string(), v.to_string()));
    }
    ManagerProcess::spawn_ready(&vars, "aws", 2, log, &RECONCILERS).await
}

/// The stack's environment for a manager, with AWS at `endpoint`.
fn aws_env(stack: &Stack, endpoint: &str) -> Vec<(String, String)> {
    let mut vars = stack.process_env();
    vars.push((
        "THREEPORT_MANAGER__AWS__ENDPOINT_URL".into(),
        endpoint.into(),
    ));
    vars
}

/// Resources carrying the cluster's tags, by kind, as moto lists them.
async fn tagged(aws: &AwsSession) -> Vec<(&'static str, usize)> {
    use aws_sdk_ec2::types::Filter;
    let ec2 = aws.ec2();
    let tags = || {
        vec![
            Filter::builder().name("tag:Name").values(CLUSTER).build(),
            Filter::builder()
                .name("tag:ProvisionedBy")
                .values("threeport")
                .build(),
        ]
    };
    let vpcs = ec2
        .describe_vpcs()
        .set_filters(Some(tags()))
        .send()
        .await
        .unwrap();
    let subnets = ec2
        .describe_subnets()
        .set_filters(Some(tags()))
        .send()
        .await
        .unwrap();
    let igws = ec2
        .describe_internet_gateways()
        .set_filters(Some(tags()))
        .send()
        .await
        .unwrap();
    let eips = ec2
        .describe_addresses()
        .set_filters(Some(tags()))
        .send()
        .await
        .unwrap();
    let tables = ec2
        .describe_route_tables()
        .set_filters(Some(tags()))
        .send()
        .await
        .unwrap();
    let nats = ec2
        .describe_nat_gateways()
        .set_filter(Some(tags()))
        .send()
        .await
        .unwrap();
    let live_nats = nats
        .nat_gateways()
        .iter()
        .filter(|n| {
            !matches!(
                n.state(),
                Some(aws_sdk_ec2::types::NatGatewayState::Deleted)
            )
        })
        .count();
    vec![
        ("vpcs", vpcs.vpcs().len()),
        ("subnets", subnets.subnets().len()),
        ("internet gateways", igws.internet_gateways().len()),
        ("elastic ips", eips.addresses().len()),
        ("route tables", tables.route_tables().len()),
        ("nat gateways", live_nats),
    ]
}

async fn role_names(aws: &AwsSession) -> HashSet<String> {
    aws.iam()
        .list_roles()
        .send()
        .await
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .filter(|n| n.ends_with(CLUSTER) || n.starts_with("app-"))
        .collect()
}

/// What an EKS runtime needs before its instance: EKS's cluster security group (played by
/// the test, in the default VPC out of the cluster's way) and Threeport's objects as the
/// kubernetes-runtime controller makes them.
struct EksObjects {
    eks_group: String,
    account: u64,
    kri: u64,
    eks_def: u64,
}

async fn eks_objects(stack: &Stack, aws: &AwsSession) -> EksObjects {
    // EKS's part: the cluster security group (in the default VPC, out of the cluster's way).
    let ec2 = aws.ec2();
    let default_vpc = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("is-default")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let eks_group = ec2
        .create_security_group()
        .group_name(format!("eks-cluster-sg-{CLUSTER}"))
        .description("made by EKS for the cluster (played by the test)")
        .vpc_id(&default_vpc)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("aws:eks:cluster-name")
                        .value(CLUSTER)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();

    // Threeport's objects for an EKS runtime, as the kubernetes-runtime controller makes them.
    let account = post(
        stack,
        AWS_ACCOUNT,
        json!({"Name": "moto", "AccountID": ACCOUNT_ID, "DefaultRegion": REGION,
               "AccessKeyID": "AKIAIOSFODNN7EXAMPLE",
               "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
    )
    .await;
    let stored = get(stack, AWS_ACCOUNT, account).await.unwrap();
    assert_ne!(
        stored["SecretAccessKey"], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "the API stores the key encrypted"
    );
    let krd = post(
        stack,
        KUBERNETES_RUNTIME_DEFINITION,
        json!({"Name": CLUSTER, "InfraProvider": "eks"}),
    )
    .await;
    let kri = post(
        stack,
        KUBERNETES_RUNTIME_INSTANCE,
        json!({"Name": CLUSTER, "KubernetesRuntimeDefinitionID": krd, "Location": "NorthAmerica:NewYork"}),
    )
    .await;
    let eks_def = post(
        stack,
        AWS_EKS_KUBERNETES_RUNTIME_DEFINITION,
        json!({"Name": CLUSTER, "AWSAccountID": account, "ZoneCount": 2,
               "DefaultNodeGroupInstanceType": "t3.medium", "DefaultNodeGroupInitialSize": 2,
               "DefaultNodeGroupMinimumSize": 1, "DefaultNodeGroupMaximumSize": 3,
               "KubernetesRuntimeDefinitionID": krd}),
    )
    .await;
    EksObjects {
        eks_group,
        account,
        kri,
        eks_def,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_rds_and_s3_are_built_resumed_after_kills_with_faults_and_removed() {
    let Some(moto_bin) = moto_binary() else {
        return;
    };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let moto = Moto::start(&moto_bin).await;
    let proxy = AwsProxy::start(&moto.url).await;
    let aws = moto_session(&moto.url).await;
    // Kept after the test: the managers' logs are what explains a failure.
    let logs = std::env::temp_dir().join(format!("upstream-aws-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log folder");
    eprintln!("manager logs in {}", logs.display());

    let EksObjects {
        eks_group,
        account,
        kri,
        eks_def,
    } = eks_objects(&stack, &aws).await;

    // Faults: CreateVpc throttled four times (more than the SDK's own three attempts, so the
    // engine's backoff retries too); CreateCluster fails once with a 500.
    proxy.fail("CreateVpc", "RequestLimitExceeded", 503, 4);
    proxy.fail("CreateCluster", "ServerException", 500, 1);

    // The build, with the manager killed (SIGKILL) at three points, each time after moto did
    // the call and before the answer came back: a subnet, a role and the node group exist
    // in AWS but not in the inventory.
    let mut log_index = 0;
    let mut next_log = || {
        log_index += 1;
        logs.join(format!("manager-{log_index}.log"))
    };
    proxy.hold("CreateSubnet");
    let mut m = manager(&stack, &proxy.url, next_log()).await;
    let eks = post(
        &stack,
        AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
        json!({"Name": CLUSTER, "Region": REGION, "AwsEksKubernetesRuntimeDefinitionID": eks_def,
               "KubernetesRuntimeInstanceID": kri}),
    )
    .await;
    for point in ["CreateSubnet", "CreateRole", "CreateNodegroup"] {
        let held = proxy.held();
        if point != "CreateSubnet" {
            proxy.hold(point);
            m = manager(&stack, &proxy.url, next_log()).await;
        }
        wait_until(LIMIT, &format!("the manager reaches {point}"), || async {
            proxy.held() > held
        })
        .await;
        m.child.kill().expect("SIGKILL");
        m.child.wait().expect("reap");
        proxy.release();
    }
    let m = manager(&stack, &proxy.url, next_log()).await;
    let built = wait_field(
        &stack,
        AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
        eks,
        "CreationConfirmed",
    )
    .await;
    assert_eq!(proxy.injected("CreateVpc"), 4);
    assert_eq!(proxy.injected("CreateCluster"), 1);
    // The node group was asked for twice: by the killed run (held), and by the resumed one,
    // which got "already exists" and adopted it (node groups have no tags to look up first).
    for (op, times) in [
        ("CreateVpc", 1),
        ("CreateCluster", 1),
        ("CreateNodegroup", 2),
        ("CreateAddon", 0),
    ] {
        assert_eq!(
            proxy.forwarded(op),
            times,
            "{op} reached AWS {times} times: {:?}",
            proxy.forwarded_all()
        );
    }
    // Nothing twice, although a subnet, a role and the node group were made by killed runs.
    assert_eq!(
        tagged(&aws).await,
        vec![
            ("vpcs", 1),
            ("subnets", 4),
            ("internet gateways", 1),
            ("elastic ips", 2),
            ("route tables", 3),
            ("nat gateways", 2),
        ]
    );
    let inventory = &built["ResourceInventory"];
    assert_eq!(inventory["securityGroupId"], eks_group.as_str());
    assert_eq!(
        inventory["nodeGroupNames"],
        json!([format!("{CLUSTER}-private-node-group")])
    );
    assert!(inventory["cluster"]["oidcProviderUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://oidc.eks."));
    assert!(inventory["dnsManagementRole"]["roleArn"]
        .as_str()
        .unwrap()
        .contains("dns-mgmt-role-eks1"));
    assert!(inventory["secretsManagerRole"]["roleArn"]
        .as_str()
        .unwrap()
        .contains("secrets-manager-role-eks1"));
    assert_eq!(inventory["policyArns"].as_array().unwrap().len(), 4);
    let roles = role_names(&aws).await;
    for r in [
        "cluster-role-",
        "worker-role-",
        "dns-mgmt-role-",
        "dns-chlg-role-",
        "secrets-manager-role-",
        "ca-role-",
        "csi-role-",
    ] {
        assert!(roles.contains(&format!("{r}{CLUSTER}")), "{r} in {roles:?}");
    }
    let groups = aws
        .eks()
        .list_nodegroups()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.nodegroups().len(), 1);
    // The runtime instance was told how to reach the cluster, and un-reconciled.
    let described = aws
        .eks()
        .describe_cluster()
        .name(CLUSTER)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap();
    let runtime = get(&stack, KUBERNETES_RUNTIME_INSTANCE, kri).await.unwrap();
    assert_eq!(runtime["APIEndpoint"], described.endpoint().unwrap());
    assert_eq!(runtime["CACertificate"], proxy.cluster_ca_pem.as_str());
    assert!(runtime["ConnectionToken"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(!runtime["ConnectionTokenExpiration"].is_null());
    assert_eq!(runtime["Reconciled"], false);

    // A workload on the runtime, with a database and a bucket.
    let wd = post(&stack, WORKLOAD_DEFINITION, json!({"Name": "app", "YAMLDocument": "kind: Namespace\napiVersion: v1\nmetadata:\n  name: app\n", "Reconciled": true})).await;
    let wi = post(&stack, WORKLOAD_INSTANCE, json!({"Name": "app", "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": kri, "Reconciled": true})).await;
    for definition in [
        json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "app", "namespace": "app"}}),
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "app", "namespace": "app"},
               "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app"}]}}}}),
    ] {
        post(
            &stack,
            WORKLOAD_RESOURCE_INSTANCE,
            json!({"JSONDefinition": definition, "WorkloadInstanceID": wi}),
        )
        .await;
    }
    let rds_def = post(
        &stack,
        AWS_RELATIONAL_DATABASE_DEFINITION,
        json!({"Name": "appdb", "Engine": "postgres", "EngineVersion": "15.4", "DatabaseName": "app",
               "DatabasePort": 5432, "MachineSize": "Small", "StorageGb": 20, "BackupDays": 0,
               "WorkloadSecretName": "app-db", "AwsAccountID": account}),
    )
    .await;
    proxy.fail("CreateDBInstance", "InternalFailure", 500, 4);
    let rds = post(
        &stack,
        AWS_RELATIONAL_DATABASE_INSTANCE,
        json!({"Name": "appdb", "AwsRelationalDatabaseDefinitionID": rds_def, "WorkloadInstanceID": wi}),
    )
    .await;
    let s3_def = post(
        &stack,
        AWS_OBJECT_STORAGE_BUCKET_DEFINITION,
        json!({"Name": "appdata", "WorkloadServiceAccountName": "app", "WorkloadBucketEnvVar": "BUCKET",
               "AwsAccountID": account}),
    )
    .await;
    let s3 = post(
        &stack,
        AWS_OBJECT_STORAGE_BUCKET_INSTANCE,
        json!({"Name": "appdata", "AwsObjectStorageBucketDefinitionID": s3_def, "WorkloadInstanceID": wi}),
    )
    .await;
    let db = wait_field(
        &stack,
        AWS_RELATIONAL_DATABASE_INSTANCE,
        rds,
        "CreationConfirmed",
    )
    .await;
    let bucket = wait_field(
        &stack,
        AWS_OBJECT_STORAGE_BUCKET_INSTANCE,
        s3,
        "CreationConfirmed",
    )
    .await;
    assert_eq!(proxy.forwarded("CreateDBInstance"), 1);
    assert_eq!(proxy.injected("CreateDBInstance"), 4);

    let instances = aws.rds().describe_db_instances().send().await.unwrap();
    assert_eq!(instances.db_instances().len(), 1);
    let endpoint = instances.db_instances()[0]
        .endpoint()
        .unwrap()
        .address()
        .unwrap()
        .to_string();
    assert_eq!(
        db["ResourceInventory"]["rdsInstanceEndpoint"],
        endpoint.as_str()
    );
    assert_eq!(
        db["ResourceInventory"]["subnetGroupName"],
        "appdb-subnet-group"
    );
    let buckets: Vec<String> = aws
        .s3()
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .filter(|n| n.starts_with("appdata-"))
        .collect();
    assert_eq!(
        buckets,
        vec![bucket["ResourceInventory"]["bucketName"]
            .as_str()
            .unwrap()
            .to_string()]
    );
    let role = bucket["ResourceInventory"]["role"]["roleName"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(role_names(&aws).await.contains(&role));

    // The workload got the Secret, the role on its service account, and the bucket's name.
    let wris = stack
        .list_where(WORKLOAD_RESOURCE_INSTANCE, "workloadinstanceid", wi)
        .await;
    let of = |kind: &str| -> Vec<&Value> {
        wris.iter()
            .map(|w| &w["JSONDefinition"])
            .filter(|d| d["kind"] == kind)
            .collect()
    };
    let secrets = of("Secret");
    assert_eq!(secrets.len(), 1, "one Secret: {secrets:?}");
    assert_eq!(
        secrets[0]["metadata"],
        json!({"name": "app-db", "namespace": "app", "creationTimestamp": null})
    );
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    assert_eq!(secrets[0]["data"]["db-endpoint"], b64(&endpoint).as_str());
    assert_eq!(secrets[0]["data"]["db-port"], b64("5432").as_str());
    assert_eq!(
        of("ServiceAccount")[0]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        format!("arn:aws:iam::{ACCOUNT_ID}:role/{role}").as_str()
    );
    let maps = of("ConfigMap");
    assert_eq!(maps.len(), 1);
    assert_eq!(
        maps[0]["data"]["s3BucketName"],
        bucket["ResourceInventory"]["bucketName"]
    );
    let env = &of("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env.as_array().unwrap().len(), 1);
    assert_eq!(env[0]["name"], "BUCKET");
    assert_eq!(
        get(&stack, WORKLOAD_INSTANCE, wi).await.unwrap()["Reconciled"],
        false
    );

    // Removal, in reverse: bucket, database, cluster; each object then gone from the API.
    stack
        .api
        .delete(AWS_OBJECT_STORAGE_BUCKET_INSTANCE, s3)
        .await
        .expect("DELETE bucket");
    stack
        .api
        .delete(AWS_RELATIONAL_DATABASE_INSTANCE, rds)
        .await
        .expect("DELETE database");
    wait_gone(&stack, AWS_OBJECT_STORAGE_BUCKET_INSTANCE, s3).await;
    wait_gone(&stack, AWS_RELATIONAL_DATABASE_INSTANCE, rds).await;
    assert!(aws
        .s3()
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .all(|b| !b.name().unwrap_or("").starts_with("appdata-")));
    assert!(!role_names(&aws).await.contains(&role));
    assert!(aws
        .rds()
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .is_empty());

    stack
        .api
        .delete(AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, eks)
        .await
        .expect("DELETE EKS");
    wait_gone(&stack, AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, eks).await;
    assert_eq!(
        tagged(&aws).await,
        vec![
            ("vpcs", 0),
            ("subnets", 0),
            ("internet gateways", 0),
            ("elastic ips", 0),
            ("route tables", 0),
            ("nat gateways", 0),
        ]
    );
    assert!(
        role_names(&aws).await.is_empty(),
        "{:?}",
        role_names(&aws).await
    );
    assert!(aws
        .eks()
        .list_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
        .is_empty());
    let providers = aws
        .iam()
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
    drop(m);
}

/// `threeport-manager --enable secret`: a SecretDefinition's data (encrypted per value by the
/// API, only in the notification) lands in Secrets Manager as plaintext JSON; a SecretInstance
/// deploys external-secrets once per runtime and adds the SecretStore and ExternalSecret to
/// the workload; deletion removes them, and the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_secrets_manager_and_the_workload() {
    let Some(moto_bin) = moto_binary() else {
        return;
    };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let moto = Moto::start(&moto_bin).await;
    let aws = moto_session(&moto.url).await;
    let logs = std::env::temp_dir().join(format!("upstream-secret-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log folder");
    let _m = ManagerProcess::spawn_ready(
        &aws_env(&stack, &moto.url),
        "secret",
        2,
        logs.join("manager.log"),
        &["SecretDefinitionReconciler", "SecretInstanceReconciler"],
    )
    .await;

    let account = post(
        &stack,
        AWS_ACCOUNT,
        json!({"Name": "moto", "AccountID": ACCOUNT_ID, "DefaultRegion": REGION,
               "AccessKeyID": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "not-a-real-key"}),
    )
    .await;
    let def = post(
        &stack,
        SECRET_DEFINITION,
        json!({"Name": "db", "AwsAccountID": account, "Data": {"username": "admin", "password": "s3cr3t"}}),
    )
    .await;
    wait_until(LIMIT, "the secret definition reconciled", || async {
        get(&stack, SECRET_DEFINITION, def)
            .await
            .is_some_and(|d| d["Reconciled"] == true)
    })
    .await;
    let value = aws
        .secrets_manager()
        .get_secret_value()
        .secret_id("db")
        .send()
        .await
        .expect("the secret in Secrets Manager");
    assert_eq!(
        value.secret_string(),
        Some(r#"{"password":"s3cr3t","username":"admin"}"#)
    );

    // A workload on the stack's (kind) runtime, and the secret made available to it.
    let wd = post(&stack, WORKLOAD_DEFINITION, json!({"Name": "app", "YAMLDocument": "kind: Namespace\napiVersion: v1\nmetadata:\n  name: app\n", "Reconciled": true})).await;
    let wi = post(&stack, WORKLOAD_INSTANCE, json!({"Name": "app", "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": stack.runtime_id, "Reconciled": true})).await;
    let si = post(
        &stack,
        SECRET_INSTANCE,
        json!({"Name": "db-creds", "KubernetesRuntimeInstanceID": stack.runtime_id,
               "SecretDefinitionID": def, "WorkloadInstanceID": wi}),
    )
    .await;
    wait_until(LIMIT, "the secret instance reconciled", || async {
        get(&stack, SECRET_INSTANCE, si)
            .await
            .is_some_and(|d| d["Reconciled"] == true)
    })
    .await;
    let runtime = get(&stack, KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .unwrap();
    let support_name = format!("external-secrets-{}", runtime["Name"].as_str().unwrap());
    let support: Vec<Value> = stack
        .list_all(WORKLOAD_INSTANCE)
        .await
        .into_iter()
        .filter(|w| w["Name"] == support_name.as_str())
        .collect();
    assert_eq!(support.len(), 1, "{support:?}");
    assert_eq!(runtime["SecretsControllerInstanceId"], support[0]["ID"]);
    let support_def = get(
        &stack,
        WORKLOAD_DEFINITION,
        support[0]["WorkloadDefinitionID"].as_u64().unwrap(),
    )
    .await
    .unwrap();
    let yaml = support_def["YAMLDocument"].as_str().unwrap();
    assert!(
        yaml.contains("kind: ExternalSecrets") && yaml.contains("iamRoleArn: testIamRoleArn"),
        "{yaml}"
    );
    let wris = stack
        .list_where(WORKLOAD_RESOURCE_INSTANCE, "workloadinstanceid", wi)
        .await;
    let kinds: Vec<(&str, &str)> = wris
        .iter()
        .map(|w| {
            (
                w["JSONDefinition"]["kind"].as_str().unwrap(),
                w["JSONDefinition"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("SecretStore", "db-creds"), ("ExternalSecret", "db-creds")]
    );
    let store = &wris[0]["JSONDefinition"];
    assert_eq!(store["spec"]["provider"]["aws"]["region"], "us-east-1");
    assert_eq!(
        wris[1]["JSONDefinition"]["spec"]["dataFrom"][0]["extract"]["key"],
        "db"
    );
    assert_eq!(
        get(&stack, WORKLOAD_INSTANCE, wi).await.unwrap()["Reconciled"],
        false
    );

    // Removal: the objects are scheduled for deletion by the workload controller, the
    // instance goes, then the definition and its secret.
    stack
        .api
        .delete(SECRET_INSTANCE, si)
        .await
        .expect("DELETE instance");
    wait_gone(&stack, SECRET_INSTANCE, si).await;
    let wris = stack
        .list_where(WORKLOAD_RESOURCE_INSTANCE, "workloadinstanceid", wi)
        .await;
    assert!(
        wris.iter().all(|w| !w["ScheduledForDeletion"].is_null()),
        "{wris:?}"
    );
    stack
        .api
        .delete(SECRET_DEFINITION, def)
        .await
        .expect("DELETE definition");
    wait_gone(&stack, SECRET_DEFINITION, def).await;
    let described = aws
        .secrets_manager()
        .describe_secret()
        .secret_id("db")
        .send()
        .await;
    match described {
        Ok(d) => assert!(d.deleted_date().is_some(), "scheduled for deletion"),
        Err(e) => assert!(
            format!("{e:?}").contains("ResourceNotFoundException"),
            "{e:?}"
        ),
    }
}

/// A build killed after AWS made something it never recorded, then deleted before it
/// resumed: the deletion finds what was made (here a subnet in the recorded VPC, which would
/// otherwise keep the VPC's deletion failing forever) and removes everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_build_deleted_before_it_resumes_leaves_nothing() {
    let Some(moto_bin) = moto_binary() else {
        return;
    };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let moto = Moto::start(&moto_bin).await;
    let proxy = AwsProxy::start(&moto.url).await;
    let aws = moto_session(&moto.url).await;
    let logs = std::env::temp_dir().join(format!("upstream-aws-kill-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log folder");
    let objects = eks_objects(&stack, &aws).await;

    proxy.hold("CreateSubnet");
    let mut m = manager(&stack, &proxy.url, logs.join("manager-1.log")).await;
    let eks = post(
        &stack,
        AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
        json!({"Name": CLUSTER, "Region": REGION, "AwsEksKubernetesRuntimeDefinitionID": objects.eks_def,
               "KubernetesRuntimeInstanceID": objects.kri}),
    )
    .await;
    wait_until(LIMIT, "the manager reaches CreateSubnet", || async {
        proxy.held() == 1
    })
    .await;
    m.child.kill().expect("SIGKILL");
    m.child.wait().expect("reap");
    proxy.release();
    let recorded = get(&stack, AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, eks)
        .await
        .unwrap();
    assert!(recorded["ResourceInventory"]["vpcId"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    assert!(
        recorded["ResourceInventory"]["availabilityZones"]
            .as_array()
            .unwrap()
            .iter()
            .all(|z| z["publicSubnets"][0]["subnetId"] == ""),
        "the subnet moto made is not in the inventory: {recorded}"
    );
    assert_eq!(tagged(&aws).await[1], ("subnets", 1));

    // Deleted while no manager runs; the next one takes the Deleted notification.
    stack
        .api
        .delete(AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, eks)
        .await
        .expect("DELETE EKS");
    let _m = manager(&stack, &proxy.url, logs.join("manager-2.log")).await;
    wait_gone(&stack, AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, eks).await;
    assert_eq!(
        tagged(&aws).await,
        vec![
            ("vpcs", 0),
            ("subnets", 0),
            ("internet gateways", 0),
            ("elastic ips", 0),
            ("route tables", 0),
            ("nat gateways", 0),
        ]
    );
    assert_eq!(
        proxy.forwarded("CreateCluster"),
        0,
        "the build did not resume"
    );
}

/// An EKS runtime's connection token is refreshed before it expires (spec 3.1.1 step 4), and
/// the workloads on the runtime are deployed with the fresh one. kube-apiserver plays the EKS
/// cluster: DescribeCluster answers with its endpoint and CA, and it accepts only the tokens
/// EKS accepts (its token webhook is the authenticator in `harness::eks_authenticator`, which
/// asks moto's STS who signed each). The runtime instance holds a token that expired a minute
/// ago. Two workload instances on it: one refresh (one DescribeCluster), a token valid for
/// 14 minutes stored in the runtime instance (encrypted by the API), both workloads deployed,
/// and the expired token never presented to the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eks_runtimes_expired_token_is_refreshed_and_its_workloads_deploy() {
    let Some(moto_bin) = moto_binary() else {
        return;
    };
    let moto = Moto::start(&moto_bin).await;
    let proxy = AwsProxy::start(&moto.url).await;
    let authenticator = EksAuthenticator::start(CLUSTER, REGION, &proxy.url).await;
    let Some(stack) = Stack::upstream_with(UpstreamOptions {
        token_webhook_port: Some(authenticator.port),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let aws = moto_session(&moto.url).await;
    let logs = std::env::temp_dir().join(format!("upstream-eks-token-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log folder");

    // The cluster in moto, played by the stack's kube-apiserver.
    aws.eks()
        .create_cluster()
        .name(CLUSTER)
        .role_arn(format!(
            "arn:aws:iam::{ACCOUNT_ID}:role/cluster-role-{CLUSTER}"
        ))
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().build())
        .send()
        .await
        .expect("moto CreateCluster");
    let genesis = get(&stack, KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .expect("the stack's runtime instance");
    let endpoint = genesis["APIEndpoint"].as_str().expect("APIEndpoint");
    let ca = genesis["CACertificate"].as_str().expect("CACertificate");
    proxy.play_cluster(endpoint, ca);

    // Threeport's objects for a provisioned EKS runtime, its token expired a minute ago.
    let account = post(
        &stack,
        AWS_ACCOUNT,
        json!({"Name": "moto", "AccountID": ACCOUNT_ID, "DefaultRegion": REGION,
               "AccessKeyID": "AKIAIOSFODNN7EXAMPLE",
               "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
    )
    .await;
    let krd = post(
        &stack,
        KUBERNETES_RUNTIME_DEFINITION,
        json!({"Name": CLUSTER, "InfraProvider": "eks", "Reconciled": true}),
    )
    .await;
    let expired = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let kri = post(
        &stack,
        KUBERNETES_RUNTIME_INSTANCE,
        json!({"Name": CLUSTER, "KubernetesRuntimeDefinitionID": krd,
               "Location": "NorthAmerica:NewYork", "APIEndpoint": endpoint, "CACertificate": ca,
               "ConnectionToken": "k8s-aws-v1.expired",
               "ConnectionTokenExpiration": expired
                   .format(&time::format_description::well_known::Rfc3339).unwrap(),
               "Reconciled": true}),
    )
    .await;
    let eks_def = post(
        &stack,
        AWS_EKS_KUBERNETES_RUNTIME_DEFINITION,
        json!({"Name": CLUSTER, "AWSAccountID": account, "ZoneCount": 2,
               "DefaultNodeGroupInstanceType": "t3.medium", "DefaultNodeGroupInitialSize": 2,
               "DefaultNodeGroupMinimumSize": 1, "DefaultNodeGroupMaximumSize": 3,
               "KubernetesRuntimeDefinitionID": krd}),
    )
    .await;
    post(
        &stack,
        AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
        json!({"Name": CLUSTER, "Region": REGION, "AwsEksKubernetesRuntimeDefinitionID": eks_def,
               "KubernetesRuntimeInstanceID": kri, "Reconciled": true}),
    )
    .await;
    let stale =
        get(&stack, KUBERNETES_RUNTIME_INSTANCE, kri).await.unwrap()["ConnectionToken"].clone();

    let started = time::OffsetDateTime::now_utc();
    let _manager = ManagerProcess::spawn_ready(
        &aws_env(&stack, &proxy.url),
        "workload",
        2,
        logs.join("manager.log"),
        &["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"],
    )
    .await;
    let wd = post(
        &stack,
        WORKLOAD_DEFINITION,
        json!({"Name": "eks-app", "YAMLDocument":
               "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: eks-app\ndata:\n  a: b\n"}),
    )
    .await;
    let instances = [
        post(&stack, WORKLOAD_INSTANCE, json!({"Name": "eks-app-1", "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": kri})).await,
        post(&stack, WORKLOAD_INSTANCE, json!({"Name": "eks-app-2", "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": kri})).await,
    ];
    for wi in instances {
        wait_until(
            LIMIT,
            &format!("workload instance {wi} reconciled"),
            || async {
                get(&stack, WORKLOAD_INSTANCE, wi).await.unwrap_or_default()["Reconciled"] == true
            },
        )
        .await;
    }

    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::all(stack.kube.clone());
    let deployed = maps
        .list(&kube::api::ListParams::default().fields("metadata.name=eks-app"))
        .await
        .expect("list ConfigMaps");
    assert_eq!(deployed.items.len(), 2, "one ConfigMap per instance");
    assert_eq!(
        proxy.forwarded("GET /clusters"),
        1,
        "one refresh for both instances: {:?}",
        proxy.forwarded_all()
    );
    let refreshed = get(&stack, KUBERNETES_RUNTIME_INSTANCE, kri).await.unwrap();
    assert_ne!(refreshed["ConnectionToken"], stale, "a new token is stored");
    assert_ne!(
        refreshed["ConnectionToken"].as_str().unwrap_or_default(),
        "",
        "the token is stored"
    );
    assert!(
        !refreshed["ConnectionToken"]
            .as_str()
            .unwrap()
            .starts_with("k8s-aws-v1."),
        "the API stores the token encrypted"
    );
    let expires = time::OffsetDateTime::parse(
        refreshed["ConnectionTokenExpiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("ConnectionTokenExpiration");
    // Valid for 14 minutes from the refresh, which came after the manager started.
    let lifetime = time::Duration::minutes(14);
    let now = time::OffsetDateTime::now_utc();
    assert!(
        expires >= started + lifetime && expires <= now + lifetime,
        "the new token expires 14 minutes after a refresh between {started} and {now}: {expires}"
    );
    let valid_for = expires - now;
    assert_eq!(refreshed["APIEndpoint"], endpoint);
    assert_eq!(refreshed["CACertificate"], ca);
    let reviews = authenticator.reviews();
    assert!(
        !reviews.accepted.is_empty()
            && reviews
                .accepted
                .iter()
                .all(|who| who.starts_with("arn:aws:")),
        "the cluster accepted the refreshed token, signed by an AWS identity: {reviews:?}"
    );
    assert!(
        reviews.refused.is_empty(),
        "no other token (the expired one) reached the cluster: {reviews:?}"
    );
    // The cluster's authenticator had STS vouch for the token (through the proxy).
    assert!(proxy.forwarded("GetCallerIdentity") >= 1);
    eprintln!(
        "one refresh; {} requests authenticated with the new token, none refused; it is valid \
         for {valid_for} more",
        reviews.accepted.len()
    );
}
