//! GetCoachingActivity: comments on session transcripts per session, trainee and coach (see
//! `domain::coaching`).

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiResult, Principal};

use super::{
    AnalyticsApp,
    messages::clamp_i32,
    request_checks::{TraineeScope, db_err},
};
use crate::{
    domain::coaching::tally,
    store::{coaching, query},
};

pub async fn get_coaching_activity(
    app: &AnalyticsApp,
    p: &Principal,
    req: pb::GetCoachingActivityRequest,
) -> ApiResult<pb::GetCoachingActivityResponse> {
    // Trainees see only their own: no trainee means "me".
    let scope = TraineeScope::check(
        p,
        &req.organization,
        &req.trainee,
        req.start_time.as_ref(),
        req.end_time.as_ref(),
        app.settings.max_range_days,
    )?;
    let key = format!("coaching|{}", scope.key());
    let TraineeScope {
        org,
        trainee,
        range,
    } = scope;
    app.cached(&org, key, async {
        let db = app.db.get()?;
        let rows = coaching::comments_in_range(db, &org, &range, trainee.as_deref())
            .await
            .map_err(db_err)?;
        let answered = coaching::answered_comments(db, &org, range.start_us, trainee.as_deref())
            .await
            .map_err(db_err)?;
        let a = tally(&rows, &answered);
        let members: Vec<String> = a
            .trainees
            .iter()
            .map(|t| t.trainee.clone())
            .chain(a.coaches.iter().map(|c| c.author.clone()))
            .collect();
        let names = query::display_names(db, &members).await.map_err(db_err)?;
        let name = |m: &str| names.get(m).cloned().unwrap_or_default();
        Ok(pb::GetCoachingActivityResponse {
            comment_count: clamp_i32(a.comments),
            commented_session_count: clamp_i32(a.commented_sessions),
            sessions: a
                .sessions
                .into_iter()
                .map(|s| pb::SessionCoaching {
                    session: s.session,
                    trainee: s.trainee,
                    comment_count: clamp_i32(s.comments),
                    trainee_comment_count: clamp_i32(s.by_trainee),
                })
                .collect(),
            trainees: a
                .trainees
                .into_iter()
                .map(|t| pb::TraineeCoaching {
                    display_name: name(&t.trainee),
                    trainee: t.trainee,
                    comments_received: clamp_i32(t.received),
                    comments_answered: clamp_i32(t.answered),
                    replies_written: clamp_i32(t.replies),
                })
                .collect(),
            coaches: a
                .coaches
                .into_iter()
                .map(|c| pb::CoachActivity {
                    display_name: name(&c.author),
                    author: c.author,
                    comments_written: clamp_i32(c.comments),
                    sessions_coached: clamp_i32(c.sessions),
                    trainees_coached: clamp_i32(c.trainees),
                })
                .collect(),
        })
    })
    .await
}
