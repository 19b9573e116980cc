use super::*;

#[test]
fn agent_images_need_a_name_and_a_tag_or_digest() {
    for ok in [
        "ghcr.io/threeport/threeport-agent:v0.6.1",
        "registry.example.com/agent:v1",
        "localhost:5000/org/agent:dev",
        "ghcr.io/threeport/threeport-agent@sha256:0123abcd",
    ] {
        assert_eq!(checked_image(ok), Ok(ok), "{ok}");
    }
    for (bad, why) in [
        ("ghcr.io/threeport/threeport-agent", "no tag or digest"),
        ("localhost:5000/org/agent", "no tag or digest"),
        ("ghcr.io/threeport/:v1", "no image name"),
        ("ghcr.io/threeport/agent :v1", "whitespace"),
        ("ghcr.io/threeport/agent@sha256", "digest"),
        ("ghcr.io/threeport/agent@sha256:xyz", "digest"),
    ] {
        let err = checked_image(bad).expect_err(bad).to_string();
        assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
    }
}

fn inputs(eks: bool) -> InstallInputs {
    InstallInputs {
        runtime_name: "edge-1".into(),
        agent_image: None,
        aws_account_id: eks.then(|| "111122223333".to_string()),
        control_plane_host: false,
    }
}

fn all_objects(plan: &[(InstallStep, Vec<Value>)]) -> Vec<&Value> {
    plan.iter().flat_map(|(_, objects)| objects).collect()
}

fn contains_text(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(items) => items.iter().any(|i| contains_text(i, needle)),
        Value::Object(map) => map.values().any(|i| contains_text(i, needle)),
        _ => false,
    }
}

#[test]
fn every_data_file_parses_and_names_its_objects() {
    const NAMESPACED: [&str; 5] = [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ];
    let mut total = 0;
    for step in InstallStep::ALL {
        let objects = step.template().expect("data file parses");
        assert!(!objects.is_empty(), "{} is empty", step.file_name());
        for o in &objects {
            let kind = o["kind"].as_str().unwrap_or_default();
            assert!(o["apiVersion"].is_string() && !kind.is_empty(), "{o}");
            assert!(o["metadata"]["name"].is_string(), "{kind} without a name");
            if NAMESPACED.contains(&kind) {
                assert!(
                    o["metadata"]["namespace"].is_string(),
                    "{kind} {} in {} names no namespace",
                    o["metadata"]["name"],
                    step.file_name()
                );
            }
        }
        total += objects.len();
    }
    // What Threeport v0.6.1's controller creates for an EKS runtime (recorded).
    assert_eq!(total, 35);
}

#[test]
fn the_plan_replaces_every_placeholder_and_leaves_eks_out_of_kind_runtimes() {
    let kind = install_plan(&inputs(false)).unwrap();
    let steps: Vec<InstallStep> = kind.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, InstallStep::ALL[..4].to_vec());

    let eks = install_plan(&inputs(true)).unwrap();
    assert_eq!(eks.len(), 5);
    for o in all_objects(&eks) {
        assert!(!contains_text(o, "${"), "placeholder left in {o}");
    }
    let autoscaler_sa = all_objects(&eks)
        .into_iter()
        .find(|o| o["kind"] == "ServiceAccount" && o["metadata"]["name"] == "cluster-autoscaler")
        .expect("cluster-autoscaler service account");
    assert_eq!(
        autoscaler_sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/ca-role-edge-1"
    );
    let agent = all_objects(&eks)
        .into_iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "threeport-agent")
        .expect("agent");
    assert_eq!(
        agent["metadata"]["labels"]["app.kubernetes.io/instance"],
        "threeport-agentedge-1"
    );
}

#[test]
fn the_control_planes_own_runtime_keeps_the_agent_its_installer_made() {
    let host = install_plan(&InstallInputs {
        control_plane_host: true,
        ..inputs(false)
    })
    .unwrap();
    let steps: Vec<InstallStep> = host.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        steps,
        vec![
            InstallStep::ControlPlaneNamespace,
            InstallStep::ThreeportCrds,
            InstallStep::SupportServicesOperator
        ]
    );
}

#[test]
fn a_runtime_name_is_data_not_yaml() {
    let mut hostile = inputs(true);
    hostile.runtime_name = "x\"\n---\nkind: Secret".into();
    let plan = install_plan(&hostile).unwrap();
    let count = all_objects(&plan).len();
    assert_eq!(
        count,
        all_objects(&install_plan(&inputs(true)).unwrap()).len()
    );
    assert!(all_objects(&plan).iter().all(|o| o["kind"] != "Secret"));
}

#[test]
fn the_agent_image_replaces_only_the_agent_container_image() {
    let image = "registry.example.com/platform/agent:v7";
    let plain = install_plan(&inputs(false)).unwrap();
    let custom = install_plan(&InstallInputs {
        agent_image: Some(image.into()),
        ..inputs(false)
    })
    .unwrap();
    let (plain, custom) = (all_objects(&plain), all_objects(&custom));
    let differing: Vec<(&Value, &Value)> = plain
        .iter()
        .zip(&custom)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (*a, *b))
        .collect();
    assert_eq!(differing.len(), 1);
    let containers = differing[0].1["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let images: Vec<(&str, &str)> = containers
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["image"].as_str().unwrap()))
        .collect();
    assert_eq!(
        images,
        vec![
            (
                "kube-rbac-proxy",
                "gcr.io/kubebuilder/kube-rbac-proxy:v0.13.1"
            ),
            ("manager", image)
        ]
    );
    // Empty is unset, as in Threeport.
    let empty = install_plan(&InstallInputs {
        agent_image: Some(String::new()),
        ..inputs(false)
    })
    .unwrap();
    assert_eq!(all_objects(&empty), plain);
    let bad = install_plan(&InstallInputs {
        agent_image: Some("ghcr.io/threeport/threeport-agent".into()),
        ..inputs(false)
    })
    .expect_err("no tag");
    assert!(bad.to_string().contains("ThreeportAgentImage"), "{bad}");
}

#[test]
fn the_crds_before_the_support_services_step_define_its_custom_resource() {
    let plan = install_plan(&inputs(false)).unwrap();
    let before: Vec<(String, String)> = plan
        .iter()
        .take_while(|(s, _)| !s.needs_crds_served())
        .flat_map(|(_, objects)| crd_kinds(objects))
        .collect();
    assert_eq!(before.len(), 6, "{before:?}");
    let (_, support) = plan
        .iter()
        .find(|(s, _)| *s == InstallStep::SupportServicesOperator)
        .unwrap();
    for o in support {
        let (av, kind) = (
            o["apiVersion"].as_str().unwrap(),
            o["kind"].as_str().unwrap(),
        );
        if av.contains(".support-services.nukleros.io/") {
            assert!(
                before.contains(&(av.to_string(), kind.to_string())),
                "{av} {kind}"
            );
        }
    }
}
