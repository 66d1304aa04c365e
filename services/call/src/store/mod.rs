//! Tables owned by the call service and their migrations.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // The outbox carries this service's events; the inbox makes its consumers idempotent.
        vec![
            Box::new(salestrainer_bus::CreateOutbox),
            Box::new(salestrainer_bus::CreateInbox),
        ]
    }
}
