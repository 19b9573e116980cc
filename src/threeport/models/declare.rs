//! The declaration macros of the object table (see the [parent module](super)).
//!
//! A field is declared as `"JSONName" => rust_name: Type [flags]`, where the flags are
//! [`FieldSpec`](super::FieldSpec)'s builder methods: `association`, `encrypted`,
//! `query("tag")`, `no_query`. Each field becomes `pub rust_name: Option<Type>` with the JSON
//! name, left out when `None`, (de)serialised through [`Wire`](super::Wire), and one
//! `FieldSpec` row of the type's table. Its rustdoc is a generated line (`` `JSONName` on
//! the wire. ``) followed by the declaration's own doc comment, if it has one.

/// A route-only object type: one no controller here reads or writes yet, but that is named
/// (a reconciler's object, an attached object a workload instance may have to delete).
/// Becomes an `api_object!` when a controller starts using its fields.
macro_rules! object_type {
    ($(#[$doc:meta])* $konst:ident = $name:literal at $path:literal $(, subject $subject:literal)?;) => {
        #[doc = concat!(
            "`/v0/", $path, "`: the `", $name, "` object type",
            $(" (subject `", $subject, "`)",)?
            ", named by route only."
        )]
        $(#[$doc])*
        pub const $konst: $crate::threeport::api::ObjectType =
            $crate::threeport::api::ObjectType::new($name, $path) $(.with_subject($subject))?;
    };
}

/// One embedded struct of Threeport's `pkg/api/v0` (spec 2.5): a model flattened into every
/// object type that embeds it.
macro_rules! embedded_struct {
    (
        $(#[$doc:meta])*
        pub struct $name:ident {
            $( $(#[$fattr:meta])* $json:literal => $field:ident: $fty:ty $([$($flag:ident $(($arg:expr))?),+])?, )*
        }
    ) => {
        model_struct! {
            $(#[$doc])*
            $name embeds {}
            fields { $( $(#[$fattr])* $json => $field: $fty, )* }
        }

        impl $crate::threeport::models::Embedded for $name {
            const FIELDS: &'static [$crate::threeport::models::FieldSpec] =
                field_specs!(embedded; $( $json => $fty $([$($flag $(($arg))?),+])?, )*);
        }
    };
}

/// One object type of the API with its typed model: `pub struct Name as CONST at "route"`
/// (`, subject "lowerCamel"` when the API publishes notifications for it), the embedded
/// structs it flattens, and its own fields.
macro_rules! api_object {
    (
        $(#[$doc:meta])*
        pub struct $name:ident as $konst:ident at $path:literal $(, subject $subject:literal)?;
        embeds { $($emb:ident: $embty:ty),* $(,)? }
        fields {
            $( $(#[$fattr:meta])* $json:literal => $field:ident: $fty:ty $([$($flag:ident $(($arg:expr))?),+])?, )*
        }
    ) => {
        #[doc = concat!("`/v0/", $path, "`: see [`", stringify!($name), "`].")]
        pub const $konst: $crate::threeport::api::ObjectType =
            $crate::threeport::api::ObjectType::new(stringify!($name), $path)
                $(.with_subject($subject))?
                .with_fields(&[
                    $(<$embty as $crate::threeport::models::Embedded>::FIELDS,)*
                    field_specs!(own; $( $json => $fty $([$($flag $(($arg))?),+])?, )*),
                ]);

        model_struct! {
            $(#[$doc])*
            $name embeds { $($emb: $embty),* }
            fields { $( $(#[$fattr])* $json => $field: $fty, )* }
        }

        impl $crate::threeport::models::ApiObject for $name {
            const OBJECT_TYPE: $crate::threeport::api::ObjectType = $konst;

            fn common(&self) -> &$crate::threeport::models::Common {
                &self.common
            }
        }
    };
}

/// The model struct of a declaration: the flattened embedded structs, then one
/// `Option<Type>` per field with its JSON name, left out when `None`, through `Wire`.
macro_rules! model_struct {
    (
        $(#[$doc:meta])*
        $name:ident embeds { $($emb:ident: $embty:ty),* }
        fields { $( $(#[$fattr:meta])* $json:literal => $field:ident: $fty:ty, )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                #[doc = concat!(
                    "The [`", stringify!($embty), "`] fields, flattened into the object's JSON."
                )]
                #[serde(flatten)]
                pub $emb: $embty,
            )*
            $(
                #[doc = concat!("`", $json, "` on the wire.")]
                $(#[$fattr])*
                #[serde(
                    rename = $json,
                    skip_serializing_if = "Option::is_none",
                    with = "crate::threeport::models::wire"
                )]
                pub $field: Option<$fty>,
            )*
        }
    };
}

/// The `FieldSpec` rows of a declaration's fields, built with `FieldSpec::$ctor` (`embedded`
/// or `own`) and the field's flags.
macro_rules! field_specs {
    ($ctor:ident; $( $json:literal => $fty:ty $([$($flag:ident $(($arg:expr))?),+])?, )*) => {
        &[$(
            $crate::threeport::models::FieldSpec::$ctor(
                $json,
                <$fty as $crate::threeport::models::Wire>::KIND,
            ) $($(.$flag($($arg)?))+)?
        ),*]
    };
}
