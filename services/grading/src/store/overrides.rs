//! Manager overrides: the audit table, the evaluation's override revision, the write of one
//! override (evaluation body, audit rows and EvaluationOverridden in one transaction) and the
//! carrying of overrides onto the evaluation a regrade writes.

use prost::Message;
use salestrainer_proto::events as ev;
use salestrainer_proto::grading as pb;
use salestrainer_runtime::db::begin_write;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::prelude::*;

use super::{Rows, evaluation, evaluation_name};

pub mod audit {
    use sea_orm::entity::prelude::*;

    /// One field changed by one OverrideEvaluation or ClearEvaluationOverride.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "evaluation_overrides")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization: String,
        /// The evaluation's id.
        pub evaluation: String,
        /// Empty for the overall score.
        pub criterion_id: String,
        pub previous_score: f64,
        pub score: f64,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        pub author: String,
        pub revision: i64,
        pub previous_effective: f64,
        pub effective: f64,
        pub create_us: i64,
        /// The override was removed: score is the grader's again.
        pub cleared: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The audit table and the evaluations' override revision (the etag's version).
pub struct CreateOverrides;

impl MigrationName for CreateOverrides {
    fn name(&self) -> &str {
        "m0004_evaluation_overrides"
    }
}

#[derive(DeriveIden)]
enum EvaluationOverrides {
    Table,
    Id,
    Organization,
    Evaluation,
    CriterionId,
    PreviousScore,
    Score,
    Reason,
    Author,
    Revision,
    PreviousEffective,
    Effective,
    CreateUs,
}

#[derive(DeriveIden)]
enum Evaluations {
    Table,
    OverrideRevision,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOverrides {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use EvaluationOverrides as O;
        let text = |c: O| ColumnDef::new(c).string().not_null().to_owned();
        let real = |c: O| ColumnDef::new(c).double().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .if_not_exists()
                    .col(text(O::Id).primary_key())
                    .col(text(O::Organization))
                    .col(text(O::Evaluation))
                    .col(text(O::CriterionId))
                    .col(real(O::PreviousScore))
                    .col(real(O::Score))
                    .col(ColumnDef::new(O::Reason).text().not_null())
                    .col(text(O::Author))
                    .col(ColumnDef::new(O::Revision).big_integer().not_null())
                    .col(real(O::PreviousEffective))
                    .col(real(O::Effective))
                    .col(ColumnDef::new(O::CreateUs).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // The audit of one evaluation, newest first.
        manager
            .create_index(
                Index::create()
                    .name("evaluation_overrides_evaluation")
                    .table(O::Table)
                    .col(O::Evaluation)
                    .col(O::CreateUs)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Evaluations::Table)
                    .add_column(
                        ColumnDef::new(Evaluations::OverrideRevision)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Evaluations::Table)
                    .drop_column(Evaluations::OverrideRevision)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(EvaluationOverrides::Table).to_owned())
            .await
    }
}

/// One override to write.
pub struct NewOverride {
    pub evaluation: String,
    /// The revision it was computed from; the write matches no row if it moved since.
    pub from_revision: i64,
    pub body: pb::Evaluation,
    pub audit: Vec<audit::Model>,
    pub event: ev::Event,
}

/// Why an override was not written.
pub enum Refused {
    /// Another override (or a regrade) came first: reload and try again.
    Changed,
}

/// Writes the evaluation's new body and revision (compare-and-set on the revision, and only
/// while no regrade superseded it), the audit rows and the event, in one transaction.
pub async fn apply(db: &DatabaseConnection, o: NewOverride) -> Result<Result<(), Refused>, DbErr> {
    let txn = begin_write(db).await?;
    let res = evaluation::Entity::update_many()
        .col_expr(
            evaluation::Column::Body,
            Expr::value(o.body.encode_to_vec()),
        )
        .col_expr(
            evaluation::Column::OverrideRevision,
            Expr::value(o.from_revision + 1),
        )
        .filter(evaluation::Column::Id.eq(o.evaluation.as_str()))
        .filter(evaluation::Column::OverrideRevision.eq(o.from_revision))
        .filter(evaluation::Column::SupersededBy.is_null())
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(Err(Refused::Changed));
    }
    audit::Entity::insert_many(o.audit.into_iter().map(audit::ActiveModel::from))
        .exec_without_returning(&txn)
        .await?;
    salestrainer_runtime::events::enqueue(&txn, &o.event).await?;
    txn.commit().await?;
    Ok(Ok(()))
}

/// An evaluation's audit, newest first, after (create_us, id) of the previous page.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    evaluation: &str,
    after: Option<(i64, String)>,
    size: u64,
) -> Result<Rows<audit::Model>, DbErr> {
    let mut q = audit::Entity::find().filter(audit::Column::Evaluation.eq(evaluation));
    let total = q.clone().count(db).await?;
    if let Some((at, id)) = after {
        q = q.filter(
            Condition::any().add(audit::Column::CreateUs.lt(at)).add(
                Condition::all()
                    .add(audit::Column::CreateUs.eq(at))
                    .add(audit::Column::Id.lt(id)),
            ),
        );
    }
    let rows = q
        .order_by_desc(audit::Column::CreateUs)
        .order_by_desc(audit::Column::Id)
        .limit(size + 1)
        .all(db)
        .await?;
    Ok(Rows { rows, total })
}

/// The overrides in force on `e` (and those it carried), as made on an earlier grade.
fn carried(e: &evaluation::Model) -> Vec<pb::ScoreOverride> {
    let body = pb::Evaluation::decode(e.body.as_slice()).unwrap_or_default();
    let own = evaluation_name(&e.organization, &e.id);
    let mut out: Vec<pb::ScoreOverride> = body
        .overall_override
        .into_iter()
        .chain(
            body.criterion_scores
                .into_iter()
                .filter_map(|c| c.r#override),
        )
        .map(|mut o| {
            o.evaluation = own.clone();
            o
        })
        .chain(body.earlier_overrides)
        .collect();
    for o in &mut out {
        o.on_earlier_grade = true;
    }
    out
}

/// For each new evaluation of a regrade whose superseded evaluation (stored, `prev`) had
/// overrides, copies them onto it as made on the earlier grade. Runs after the superseded
/// rows were marked in the same transaction, so an override racing the regrade either
/// committed before (and is copied) or finds the row superseded (and is refused).
pub async fn carry_over<C: ConnectionTrait>(
    txn: &C,
    rows: &mut [evaluation::Model],
) -> Result<(), DbErr> {
    let prevs: Vec<String> = rows.iter().filter_map(|r| r.supersedes.clone()).collect();
    if prevs.is_empty() {
        return Ok(());
    }
    let overridden = evaluation::Entity::find()
        .filter(evaluation::Column::Id.is_in(prevs))
        .filter(evaluation::Column::OverrideRevision.gt(0))
        .all(txn)
        .await?;
    for prev in overridden {
        let earlier = carried(&prev);
        for row in rows
            .iter_mut()
            .filter(|r| r.supersedes.as_deref() == Some(prev.id.as_str()))
        {
            // A body that does not decode is left as it is rather than replaced.
            if let Ok(mut body) = pb::Evaluation::decode(row.body.as_slice()) {
                body.earlier_overrides.extend(earlier.iter().cloned());
                row.body = body.encode_to_vec();
            }
        }
    }
    Ok(())
}
