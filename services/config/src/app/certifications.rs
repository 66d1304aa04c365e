//! Certifications as a content kind: the standard methods are `content`'s; what differs is
//! here. Every member reads them (a trainee needs to know what there is to earn); admins
//! write them. Who holds one is analytics' answer, computed from graded sessions.

use salestrainer_proto::config as pb;
use salestrainer_runtime::{ApiResult, Principal, Violations};

use super::{
    ConfigApp,
    access::ADMIN,
    content::{Columns, ContentKind, Reference, list, meta},
};
use crate::{
    domain::certifications as rules,
    store::content::{CERTIFICATIONS, Filter, SCENARIOS},
};

impl ContentKind for pb::Certification {
    const COLLECTION: &'static str = CERTIFICATIONS;
    const FIELD: &'static str = "certification";
    const TYPE: &'static str = "salestrainer.io/Certification";
    const UPDATABLE: &'static [&'static str] = &[
        "display_name",
        "description",
        "requirements",
        "max_attempts",
        "attempt_window",
        "validity",
    ];
    const WRITERS: &'static [salestrainer_runtime::Role] = ADMIN;

    meta!();
    fn merge_path(&mut self, p: &Self, path: &str) {
        match path {
            "display_name" => self.display_name = p.display_name.clone(),
            "description" => self.description = p.description.clone(),
            "requirements" => self.requirements = p.requirements.clone(),
            "max_attempts" => self.max_attempts = p.max_attempts,
            "attempt_window" => self.attempt_window = p.attempt_window,
            "validity" => self.validity = p.validity,
            _ => {}
        }
    }
    fn validate(&mut self, _creating: bool, _paths: &[&str], v: &mut Violations) {
        rules::certification(self, v);
    }
    fn references(&self) -> Vec<Reference> {
        self.requirements
            .iter()
            .enumerate()
            .map(|(i, r)| Reference {
                field: format!("certification.requirements[{i}].scenario"),
                collection: SCENARIOS,
                name: r.scenario.clone(),
            })
            .collect()
    }
    fn columns(&self) -> Columns {
        Columns::default()
    }
}

pub async fn list_certifications(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListCertificationsRequest,
) -> ApiResult<pb::ListCertificationsResponse> {
    let listed = list::<pb::Certification>(
        app,
        principal,
        &req.parent,
        Filter::default(),
        &[],
        &req.filter,
        (req.page_size, &req.page_token),
    )
    .await?;
    Ok(pb::ListCertificationsResponse {
        certifications: listed.items,
        next_page_token: listed.next_page_token,
        total_size: 0,
    })
}
