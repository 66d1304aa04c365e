//! Writing an imported real call: the session row (already ENDED), its whole transcript, and
//! the SessionStarted and SessionEnded events (which submit it for grading), in one
//! transaction, so a refused or failed import leaves nothing behind.

use salestrainer_runtime::{db::begin_write, events::enqueue};
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};

use super::segments::clamp_ms;
use super::sessions::{insert_row, session_ended_event, session_started_event};
use super::{segment, session, source_to_i32, speaker_to_i32};
use crate::domain::Source;
use crate::domain::transcript::TranscriptSegment;

/// Inserts `model` (ENDED, transcript final, counters set) and `segments`.
pub async fn insert_imported(
    db: &DatabaseConnection,
    model: &session::Model,
    segments: &[TranscriptSegment],
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    insert_row(&txn, model).await?;
    let rows: Vec<segment::ActiveModel> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| segment::ActiveModel {
            session_id: Set(model.id.clone()),
            segment_id: Set(s.segment_id.clone()),
            seq: Set(i as i64),
            speaker: Set(speaker_to_i32(s.speaker)),
            text: Set(s.text.clone()),
            start_ms: Set(clamp_ms(s.start_ms)),
            end_ms: Set(clamp_ms(s.end_ms)),
            is_final: Set(true),
            reply_to: Set(None),
            create_us: Set(model.create_us),
            source: Set(source_to_i32(Source::Import)),
        })
        .collect();
    // Bounded by the segment limit; chunks stay under both backends' parameter limits.
    for chunk in rows.chunks(500) {
        segment::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    enqueue(&txn, &session_started_event(model)).await?;
    enqueue(&txn, &session_ended_event(model)).await?;
    txn.commit().await?;
    Ok(())
}
