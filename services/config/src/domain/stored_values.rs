//! Protobuf enums as the rows store them (and back); instants convert through the runtime's
//! `time` module.

use salestrainer_proto::config as pb;

pub fn role_key(r: pb::Role) -> Option<&'static str> {
    match r {
        pb::Role::Admin => Some("admin"),
        pb::Role::Manager => Some("manager"),
        pb::Role::Trainee => Some("trainee"),
        pb::Role::Unspecified => None,
    }
}

pub fn role_from_key(s: &str) -> pb::Role {
    match s {
        "admin" => pb::Role::Admin,
        "manager" => pb::Role::Manager,
        "trainee" => pb::Role::Trainee,
        _ => pb::Role::Unspecified,
    }
}

pub fn kind_key(k: pb::ProviderKind) -> &'static str {
    match k {
        pb::ProviderKind::OpenaiCompatible => "openai_compatible",
        pb::ProviderKind::Vapi => "vapi",
        pb::ProviderKind::Retell => "retell",
        pb::ProviderKind::Unspecified => "unspecified",
    }
}

pub fn kind_from_key(s: &str) -> pb::ProviderKind {
    match s {
        "openai_compatible" => pb::ProviderKind::OpenaiCompatible,
        "vapi" => pb::ProviderKind::Vapi,
        "retell" => pb::ProviderKind::Retell,
        _ => pb::ProviderKind::Unspecified,
    }
}

pub fn outcome_key(o: pb::TestOutcome) -> &'static str {
    match o {
        pb::TestOutcome::Ok => "ok",
        pb::TestOutcome::Unauthorized => "unauthorized",
        pb::TestOutcome::Unreachable => "unreachable",
        pb::TestOutcome::Timeout => "timeout",
        pb::TestOutcome::Error => "error",
        pb::TestOutcome::Unspecified => "unspecified",
    }
}

pub fn outcome_from_key(s: &str) -> pb::TestOutcome {
    match s {
        "ok" => pb::TestOutcome::Ok,
        "unauthorized" => pb::TestOutcome::Unauthorized,
        "unreachable" => pb::TestOutcome::Unreachable,
        "timeout" => pb::TestOutcome::Timeout,
        "error" => pb::TestOutcome::Error,
        _ => pb::TestOutcome::Unspecified,
    }
}
