//! The manager's object table (src/threeport/models) against the sandbox API's, written
//! independently (sandbox/src/threeport/types.rs): the two describe the same Threeport types,
//! so any difference is a mistake in one of them. No NATS or API needed.

use sandbox::threeport::types::{self as sb, Kind, Rule};
use threeport_manager::registry::CONTROLLERS;
use threeport_manager::threeport::models::{QueryTag, WireKind, ALL_OBJECT_TYPES};
use threeport_manager::threeport::ObjectType;

fn sandbox_type(ty: &ObjectType) -> Option<&'static sb::TypeDef> {
    sb::by_path(ty.path)
}

/// Whether the manager's kind is the sandbox's on the wire.
fn same_kind(manager: WireKind, sandbox: Kind) -> bool {
    matches!(
        (manager, sandbox),
        (WireKind::U64, Kind::U64)
            | (WireKind::Int, Kind::Int)
            | (WireKind::Bool, Kind::Bool)
            | (WireKind::Str, Kind::Str)
            | (WireKind::Time, Kind::Time)
            | (WireKind::Json, Kind::Json | Kind::JsonArray)
            | (WireKind::Array, Kind::Array | Kind::Children(..))
    )
}

#[test]
fn every_sandbox_type_is_in_the_manager_table_with_the_same_route_and_subject() {
    for def in sb::registry() {
        let ty = ALL_OBJECT_TYPES
            .iter()
            .find(|t| t.path == def.path)
            .unwrap_or_else(|| {
                panic!(
                    "the sandbox serves /v0/{} but the manager's table has no such type",
                    def.path
                )
            });
        assert_eq!(ty.name, def.name, "/v0/{}", def.path);
        assert_eq!(ty.subject, def.subject, "subject of {}", def.name);
    }
}

#[test]
fn every_modelled_field_matches_the_sandbox() {
    let mut checked = 0;
    for ty in ALL_OBJECT_TYPES
        .iter()
        .filter(|t| t.fields().next().is_some())
    {
        let def = sandbox_type(ty)
            .unwrap_or_else(|| panic!("{} is modelled but the sandbox does not serve it", ty.name));
        let mut seen = std::collections::HashSet::new();
        for f in ty.fields() {
            assert!(seen.insert(f.json), "{}.{} declared twice", ty.name, f.json);
            let sf = def
                .fields
                .iter()
                .find(|s| s.json == f.json)
                .unwrap_or_else(|| {
                    panic!(
                        "{}.{}: not a field of the sandbox's {}",
                        ty.name, f.json, def.name
                    )
                });
            assert!(
                same_kind(f.kind, sf.kind),
                "{}.{}: manager {:?}, sandbox {:?}",
                ty.name,
                f.json,
                f.kind,
                sf.kind
            );
            assert_eq!(
                f.association,
                sf.rule == Rule::Assoc,
                "{}.{}: association",
                ty.name,
                f.json
            );
            assert_eq!(
                f.encrypted, sf.encrypted,
                "{}.{}: encrypted",
                ty.name, f.json
            );
            assert_eq!(
                f.query_key().as_deref(),
                sf.query,
                "{}.{}: query tag ({:?})",
                ty.name,
                f.json,
                f.query
            );
            checked += 1;
        }
    }
    // Guards against the loop silently checking nothing.
    assert!(checked > 80, "only {checked} fields checked");
}

#[test]
fn explicit_query_tags_are_the_exceptions_to_the_convention() {
    // A `query("x")` that equals the lower-case name is noise; keeping the exceptions visible
    // is what makes the *sic* ones stand out.
    for ty in ALL_OBJECT_TYPES {
        for f in ty.fields() {
            if let QueryTag::Tag(tag) = f.query {
                let embedded = ty.field_groups.len() > 1
                    && !ty.field_groups.last().is_some_and(|own| own.contains(f));
                assert!(
                    embedded || tag != f.json.to_ascii_lowercase(),
                    "{}.{}: query({tag:?}) is the default",
                    ty.name,
                    f.json
                );
            }
        }
    }
}

#[test]
fn every_reconciled_type_has_a_reconciler_and_every_reconciler_a_reconciled_type() {
    let reconciled: Vec<&str> = CONTROLLERS
        .iter()
        .flat_map(|c| c.reconcilers)
        .map(|r| {
            assert!(
                r.object.subject.is_some(),
                "{} reconciles {}, which has no subject",
                r.name,
                r.object.name
            );
            assert!(
                ALL_OBJECT_TYPES.contains(&r.object),
                "{} is not in ALL_OBJECT_TYPES",
                r.object.name
            );
            r.object.name
        })
        .collect();
    for ty in ALL_OBJECT_TYPES.iter().filter(|t| t.subject.is_some()) {
        assert!(
            reconciled.contains(&ty.name),
            "{} has a subject but no reconciler in the registry",
            ty.name
        );
    }
}
