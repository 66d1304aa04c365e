//! Read-model values as protobuf messages. The summary cache keeps answers encoded, so the
//! use cases build the messages themselves.

use salestrainer_proto::analytics as pb;

use crate::domain::summary::{self, Summary};

pub fn stats_pb(s: &Summary) -> pb::SummaryStats {
    let t = &s.totals;
    let avg_ms = t.average_duration_ms();
    pb::SummaryStats {
        sessions: clamp_i32(t.sessions),
        graded_sessions: clamp_i32(t.graded),
        average_score: t.average_score(),
        pass_rate: t.pass_rate(),
        close_rate: t.close_rate(),
        average_duration: Some(prost_types::Duration {
            seconds: (avg_ms / 1000.0).trunc() as i64,
            nanos: ((avg_ms % 1000.0) * 1_000_000.0).round() as i32,
        }),
        skills: s
            .skills
            .iter()
            .map(|k| pb::SkillAverage {
                skill: k.skill.clone(),
                average_score: k.average(),
                samples: clamp_i32(k.samples),
            })
            .collect(),
        trend: s
            .trend
            .iter()
            .map(|(day, d)| pb::DailyPoint {
                date: summary::date_string(*day),
                sessions: clamp_i32(d.sessions),
                graded: clamp_i32(d.graded),
                average_score: d.average_score(),
                pass_rate: d.pass_rate(),
                close_rate: d.close_rate(),
            })
            .collect(),
    }
}

pub fn clamp_i32(n: i64) -> i32 {
    n.clamp(0, i64::from(i32::MAX)) as i32
}
