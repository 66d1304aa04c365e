//! sea-orm entities of the config service. Instants are microseconds since the Unix epoch
//! (`*_us`, see `salestrainer_runtime::time`).

pub mod organization {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "organizations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub display_name: String,
        pub settings: Json,
        pub etag: String,
        pub create_us: i64,
        pub update_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        /// The JWT subject this member is bound to.
        pub subject: String,
        pub display_name: String,
        pub email: String,
        pub role: String,
        pub etag: String,
        pub create_us: i64,
        pub update_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Personas, scenarios, rubrics and assignments (see `m0002_content`).
pub mod resource {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "resources")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organization_id: String,
        /// "personas", "scenarios", "rubrics" or "assignments".
        #[sea_orm(primary_key, auto_increment = false)]
        pub collection: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub display_name: String,
        /// The resource as encoded protobuf, output-only fields cleared.
        #[sea_orm(column_type = "Blob")]
        pub spec: Vec<u8>,
        pub persona_id: Option<String>,
        pub rubric_id: Option<String>,
        pub scenario_id: Option<String>,
        pub open_to_all: bool,
        pub difficulty: Option<String>,
        pub state: Option<String>,
        pub etag: String,
        pub create_us: i64,
        pub update_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod assignee {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assignment_assignees")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organization_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub assignment_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub member_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod prompt_template {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "prompt_templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organization_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub purpose: String,
        pub display_name: String,
        pub builtin: bool,
        /// The latest revision.
        pub revision: i64,
        pub etag: String,
        pub create_us: i64,
        pub update_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod prompt_template_revision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "prompt_template_revisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organization_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub template_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i64,
        pub display_name: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub etag: String,
        pub create_us: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod provider_credential {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "provider_credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organization_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub display_name: String,
        pub base_url: String,
        pub model: String,
        #[sea_orm(column_type = "Blob")]
        pub api_key_ciphertext: Vec<u8>,
        #[sea_orm(column_type = "Blob", nullable)]
        pub webhook_secret_ciphertext: Option<Vec<u8>>,
        pub key_id: String,
        pub masked_api_key: String,
        /// The provider's public web key (VAPI); not a secret, stored in clear.
        pub public_key: String,
        pub requests_per_minute: i32,
        pub tokens_per_minute: i64,
        pub last_test_outcome: Option<String>,
        pub last_test_http_status: Option<i32>,
        pub last_test_detail: Option<String>,
        pub last_test_us: Option<i64>,
        pub last_test_latency_ms: Option<i64>,
        pub etag: String,
        pub create_us: i64,
        pub update_us: i64,
    }

    // Debug is written by hand so a logged row never shows even the ciphertext.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ProviderCredential")
                .field("organization_id", &self.organization_id)
                .field("id", &self.id)
                .field("kind", &self.kind)
                .field("key_id", &self.key_id)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
