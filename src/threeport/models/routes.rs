//! Object types that are only named so far: the objects of controllers not implemented yet.
//! Each becomes an `api_object!` in its controller's file when a controller reads or writes
//! its fields.

object_type! {
    CONTROL_PLANE_DEFINITION = "ControlPlaneDefinition" at "control-plane-definitions", subject "controlPlaneDefinition";
}

object_type! {
    CONTROL_PLANE_INSTANCE = "ControlPlaneInstance" at "control-plane-instances", subject "controlPlaneInstance";
}

object_type! {
    TERRAFORM_DEFINITION = "TerraformDefinition" at "terraform-definitions", subject "terraformDefinition";
}

object_type! {
    TERRAFORM_INSTANCE = "TerraformInstance" at "terraform-instances", subject "terraformInstance";
}
