//! The call service's section of the settings: `[call]` in the TOML file, `SALESTRAINER_CALL__*`
//! in the environment (e.g. `SALESTRAINER_CALL__IDLE_TIMEOUT_SECS`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::transcript::Limits;

fn or_default(v: u64, default: u64) -> u64 {
    if v == 0 { default } else { v }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CallSettings {
    /// Base URL the voice provider reaches our webhooks at; empty = this process's address.
    pub public_url: String,
    /// ACTIVE sessions with no activity this long are ended (0 = the default).
    pub idle_timeout_secs: u64,
    /// Concurrent Converse streams per trainee (0 = the default).
    pub max_streams_per_trainee: usize,
    /// Longest trainee turn, in characters.
    pub max_turn_chars: usize,
    /// Conversation threads are kept in Redis this long.
    pub thread_ttl_secs: u64,
    /// In-process thread cache bound (embedded mode).
    pub thread_cache_capacity: usize,
    /// How long a VOICE session ended without the provider's end-of-call report waits for
    /// it (state AWAITING_REPORT) before it fails with VOICE_REPORT_MISSING (0 = the default).
    pub voice_report_wait_secs: u64,
    /// Most transcript segments one session may hold (0 = the default).
    pub max_segments_per_session: u64,
    /// Longest transcript segment text, in UTF-8 bytes (0 = the default).
    pub max_segment_bytes: u64,
    /// Largest transcript of one session, in UTF-8 bytes of segment text (0 = the default).
    pub max_transcript_bytes: u64,
    /// Concurrent WatchSession streams per caller, per process (0 = the default).
    pub max_watch_streams_per_caller: usize,
    /// Sessions ENDED (or GRADING) unchanged this long are reconciled with grading: handed to
    /// it again through SubmitSession, or given the outcome grading has (0 = the default).
    pub reconcile_after_secs: u64,
    /// Largest transcript file ImportCall accepts, in bytes (0 = the default); its segments
    /// also count against the transcript limits above.
    pub max_import_bytes: u64,
    /// Most trainee turns of a drill session before the persona ends it (0 = the default).
    pub drill_max_turns: u64,
    /// Longest comment body, in UTF-8 bytes (0 = the default).
    pub max_comment_bytes: u64,
    /// Most comments one session may hold (0 = the default).
    pub max_comments_per_session: u64,
    /// Distributed mode: when Redis is found to have lost its data (restarted without
    /// persistence), the outbox relay sends again the events it sent this many seconds back
    /// (consumers' inboxes drop the ones they had); 0 sends none.
    pub relay_replay_after_loss_secs: u64,
}

pub const MAX_TURN_CHARS: usize = 4_000;
const IDLE_TIMEOUT_SECS: u64 = 1800;
const MAX_STREAMS_PER_TRAINEE: usize = 4;
const VOICE_REPORT_WAIT_SECS: u64 = 300;
const MAX_SEGMENTS_PER_SESSION: u64 = 5_000;
const MAX_SEGMENT_BYTES: u64 = 16 * 1024;
const MAX_TRANSCRIPT_BYTES: u64 = 1024 * 1024;
const MAX_WATCH_STREAMS_PER_CALLER: usize = 16;
const RECONCILE_AFTER_SECS: u64 = 60;
/// Room for a transcript of max_transcript_bytes plus its timings and labels.
const MAX_IMPORT_BYTES: u64 = 2 * 1024 * 1024;
const DRILL_MAX_TURNS: u64 = 4;
const MAX_COMMENT_BYTES: u64 = 4 * 1024;
const MAX_COMMENTS_PER_SESSION: u64 = 500;

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            idle_timeout_secs: IDLE_TIMEOUT_SECS,
            max_streams_per_trainee: MAX_STREAMS_PER_TRAINEE,
            max_turn_chars: MAX_TURN_CHARS,
            thread_ttl_secs: 7 * 24 * 3600,
            thread_cache_capacity: 10_000,
            voice_report_wait_secs: VOICE_REPORT_WAIT_SECS,
            max_segments_per_session: MAX_SEGMENTS_PER_SESSION,
            max_segment_bytes: MAX_SEGMENT_BYTES,
            max_transcript_bytes: MAX_TRANSCRIPT_BYTES,
            max_watch_streams_per_caller: MAX_WATCH_STREAMS_PER_CALLER,
            reconcile_after_secs: RECONCILE_AFTER_SECS,
            max_import_bytes: MAX_IMPORT_BYTES,
            drill_max_turns: DRILL_MAX_TURNS,
            max_comment_bytes: MAX_COMMENT_BYTES,
            max_comments_per_session: MAX_COMMENTS_PER_SESSION,
            relay_replay_after_loss_secs: salestrainer_bus::REPLAY_AFTER_LOSS_SECS,
        }
    }
}

impl CallSettings {
    /// The webhook base URL without a trailing slash; `listen` when none is configured.
    pub fn public_url(&self, listen: std::net::SocketAddr) -> String {
        match self.public_url.trim() {
            "" => format!("http://{listen}"),
            url => url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        // 0 would end every session at once; it has always meant "the default".
        Duration::from_secs(match self.idle_timeout_secs {
            0 => IDLE_TIMEOUT_SECS,
            n => n,
        })
    }

    /// How often the sweeper runs: a quarter of the shorter of the idle timeout and the voice
    /// report wait, between 1 s and 30 s.
    pub fn sweep_interval(&self) -> Duration {
        (self.idle_timeout().min(self.voice_report_wait()) / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    pub fn voice_report_wait(&self) -> Duration {
        Duration::from_secs(or_default(
            self.voice_report_wait_secs,
            VOICE_REPORT_WAIT_SECS,
        ))
    }

    /// How long an ended session may wait for its grading to show before it is reconciled.
    pub fn reconcile_after(&self) -> Duration {
        Duration::from_secs(or_default(self.reconcile_after_secs, RECONCILE_AFTER_SECS))
    }

    /// How often the reconciler runs: a quarter of its bound, between 1 s and 30 s.
    pub fn reconcile_interval(&self) -> Duration {
        (self.reconcile_after() / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// The transcript limits of one session.
    pub fn transcript_limits(&self) -> Limits {
        Limits {
            max_segments: or_default(self.max_segments_per_session, MAX_SEGMENTS_PER_SESSION),
            max_segment_bytes: or_default(self.max_segment_bytes, MAX_SEGMENT_BYTES),
            max_transcript_bytes: or_default(self.max_transcript_bytes, MAX_TRANSCRIPT_BYTES),
        }
    }

    pub fn max_import_bytes(&self) -> u64 {
        or_default(self.max_import_bytes, MAX_IMPORT_BYTES)
    }

    pub fn drill_max_turns(&self) -> u64 {
        or_default(self.drill_max_turns, DRILL_MAX_TURNS)
    }

    pub fn max_watch_streams_per_caller(&self) -> usize {
        match self.max_watch_streams_per_caller {
            0 => MAX_WATCH_STREAMS_PER_CALLER,
            n => n,
        }
    }

    pub fn max_comment_bytes(&self) -> u64 {
        or_default(self.max_comment_bytes, MAX_COMMENT_BYTES)
    }

    pub fn max_comments_per_session(&self) -> u64 {
        or_default(self.max_comments_per_session, MAX_COMMENTS_PER_SESSION)
    }

    pub fn max_streams_per_trainee(&self) -> usize {
        match self.max_streams_per_trainee {
            0 => MAX_STREAMS_PER_TRAINEE,
            n => n,
        }
    }

    pub fn thread_ttl(&self) -> Duration {
        Duration::from_secs(self.thread_ttl_secs)
    }
}
