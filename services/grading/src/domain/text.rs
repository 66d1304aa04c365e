//! Text helpers and the small English lexicons the cleaner, metrics and graders share.
//!
//! Matching is ASCII-case-insensitive on word boundaries and returns byte ranges into the
//! original text, so every quote we cut is an exact substring of a turn.

// The cue lists are one vocabulary with the scripted persona's.
pub use salestrainer_conversation::{
    ACCEPTANCE, BACKCHANNELS, DEFERRALS, FILLER_PHRASES, FILLERS, FRIENDLY_NEGATIVES,
    NEXT_STEP_TERMS, OPEN_QUESTION_OPENERS, QUESTION_OPENERS, REJECTIONS as REJECTION,
    TIME_PHRASES, TIME_WORDS, WEEKDAYS,
};

/// Collapses whitespace runs to one space and trims.
pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lowercased word tokens with surrounding punctuation stripped.
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_ascii_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

pub fn word_count(s: &str) -> usize {
    words(s).len()
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\''
}

/// Finds `needle` in `hay`, ASCII-case-insensitively, on word boundaries. Returns the byte
/// range in `hay` (always on char boundaries, so `&hay[s..e]` is an exact substring).
pub fn find_phrase(hay: &str, needle: &str) -> Option<(usize, usize)> {
    find_phrase_from(hay, needle, 0)
}

pub fn find_phrase_from(hay: &str, needle: &str, from: usize) -> Option<(usize, usize)> {
    let n = needle.trim();
    if n.is_empty() {
        return None;
    }
    let hb = hay.as_bytes();
    let nb = n.as_bytes();
    let needs_left = n.chars().next().is_some_and(is_word_char);
    let needs_right = n.chars().next_back().is_some_and(is_word_char);
    let first = nb[0];
    let mut i = from;
    while i + nb.len() <= hb.len() {
        // The cheap first-byte test first: most positions fail it.
        if hb[i].eq_ignore_ascii_case(&first)
            && hay.is_char_boundary(i)
            && hay.is_char_boundary(i + nb.len())
            && hb[i..i + nb.len()].eq_ignore_ascii_case(nb)
        {
            let end = i + nb.len();
            let left_ok = !needs_left || !hay[..i].chars().next_back().is_some_and(is_word_char);
            let right_ok = !needs_right || !hay[end..].chars().next().is_some_and(is_word_char);
            if left_ok && right_ok {
                return Some((i, end));
            }
        }
        i += 1;
    }
    None
}

/// The first phrase of `phrases` (in list order) found in `hay`, with its range.
pub fn find_any<'p>(hay: &str, phrases: &'p [&'p str]) -> Option<(&'p str, usize, usize)> {
    phrases
        .iter()
        .find_map(|p| find_phrase(hay, p).map(|(s, e)| (*p, s, e)))
}

pub fn contains_any(hay: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| find_phrase(hay, p).is_some())
}

/// Byte ranges of the sentences of `text`, trimmed, terminators included.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if matches!(c, '.' | '!' | '?') {
            // Keep "3.5" and "..." together; a sentence ends at a terminator followed by space
            // or the end.
            let next = iter.peek().map(|&(_, n)| n);
            if next.is_none() || next.is_some_and(char::is_whitespace) {
                push_trimmed(text, start, i + c.len_utf8(), &mut out);
                start = i + c.len_utf8();
            }
        }
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, s: usize, e: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[s..e];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if s + lead < e - trail {
        out.push((s + lead, e - trail));
    }
}

/// The sentence of `text` containing byte `pos`, as an exact substring. Long sentences are cut
/// to a window around the match so quotes stay readable.
pub fn quote_around(text: &str, start: usize, end: usize) -> &str {
    const MAX: usize = 240;
    let (s, e) = sentences(text)
        .into_iter()
        .find(|&(s, e)| s <= start && start < e)
        .unwrap_or((start, end));
    if e - s <= MAX {
        return &text[s..e];
    }
    let mut ws = start.saturating_sub(MAX / 2).max(s);
    while !text.is_char_boundary(ws) {
        ws += 1;
    }
    let mut we = (end + MAX / 2).min(e);
    while !text.is_char_boundary(we) {
        we -= 1;
    }
    text[ws..we].trim()
}

/// Whether a sentence is a question: a question mark, or a question opener.
pub fn is_question(sentence: &str) -> bool {
    if sentence.trim_end().ends_with('?') {
        return true;
    }
    let s = sentence.trim_start();
    QUESTION_OPENERS
        .iter()
        .any(|o| find_phrase(s, o).is_some_and(|(st, _)| st == 0))
}

/// Whether a question sentence is open (invites the customer to talk).
pub fn is_open_question(sentence: &str) -> bool {
    let s = sentence.trim_start();
    OPEN_QUESTION_OPENERS
        .iter()
        .any(|o| find_phrase(s, o).is_some_and(|(st, _)| st == 0))
}

/// Question sentences of `text` as byte ranges.
pub fn questions(text: &str) -> Vec<(usize, usize)> {
    sentences(text)
        .into_iter()
        .filter(|&(s, e)| is_question(&text[s..e]))
        .collect()
}

pub fn is_filler(word: &str) -> bool {
    FILLERS.contains(&word)
}

/// Number of filler words and phrases in `text`.
pub fn filler_count(text: &str) -> usize {
    let single = words(text).iter().filter(|w| is_filler(w)).count();
    let phrases: usize = FILLER_PHRASES.iter().map(|p| count_phrase(text, p)).sum();
    single + phrases
}

pub fn count_phrase(text: &str, phrase: &str) -> usize {
    let mut n = 0;
    let mut from = 0;
    while let Some((_, e)) = find_phrase_from(text, phrase, from) {
        n += 1;
        from = e;
    }
    n
}

/// A day, a date or a clock time ("Tuesday", "tomorrow", "3pm", "10:30", "at 2").
pub fn find_time_expr(text: &str) -> Option<(usize, usize)> {
    // Greetings are not times: blank them (same length, so ranges stay valid).
    let blanked = blank_greetings(text);
    let text = blanked.as_str();
    if let Some((_, s, e)) = find_any(text, WEEKDAYS)
        .or_else(|| find_any(text, TIME_WORDS))
        .or_else(|| find_any(text, TIME_PHRASES))
    {
        return Some((s, e));
    }
    find_clock(text)
}

/// A day or a clock time, the specific kind ("Tuesday", "10:30", "3pm", "at 2", "January");
/// not "this week" or "morning".
pub fn find_specific_time(text: &str) -> Option<(usize, usize)> {
    const MONTHS: &[&str] = &[
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "tomorrow",
    ];
    find_any(text, WEEKDAYS)
        .or_else(|| find_any(text, MONTHS))
        .map(|(_, s, e)| (s, e))
        .or_else(|| find_clock(text))
}

fn blank_greetings(text: &str) -> String {
    let mut out = text.to_string();
    for g in ["good morning", "good afternoon", "good evening"] {
        while let Some((s, e)) = find_phrase(&out, g) {
            out.replace_range(s..e, &" ".repeat(e - s));
        }
    }
    out
}

/// Token shapes: 10:30, 3pm, 2:00pm, and "at 3".
fn find_clock(text: &str) -> Option<(usize, usize)> {
    let mut prev_at = false;
    let mut offset = 0;
    for raw in text.split_whitespace() {
        let pos = text[offset..].find(raw).map_or(offset, |p| p + offset);
        offset = pos + raw.len();
        let t = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != ':');
        let lower = t.to_ascii_lowercase();
        let digits_then = |suffix: &str| {
            lower
                .strip_suffix(suffix)
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit() || c == ':'))
        };
        let clock = lower.contains(':')
            && lower.split(':').count() == 2
            && lower
                .split(':')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let at_hour = prev_at
            && !lower.is_empty()
            && lower.chars().all(|c| c.is_ascii_digit())
            && lower.parse::<u32>().is_ok_and(|h| (1..=12).contains(&h));
        if clock || digits_then("am") || digits_then("pm") || at_hour {
            return Some((pos, pos + raw.len()));
        }
        prev_at = lower == "at";
    }
    None
}

/// The first sentence of a reply accepts (and does not turn down) what was proposed.
pub fn accepts(reply: &str) -> Option<(usize, usize)> {
    let (s, e) = sentences(reply).into_iter().next()?;
    // Look at the opening clause: "Sure, but not Tuesday" is a no.
    let first = &reply[s..e];
    if is_rejection(first) {
        return None;
    }
    let (_, ms, me) = find_any(first, ACCEPTANCE).or_else(|| {
        // Friendly negatives are themselves acceptances ("No problem, Tuesday it is").
        find_any(first, FRIENDLY_NEGATIVES)
    })?;
    Some((s + ms, s + me))
}

/// Whether `text` turns something down or hedges ("not", "can't", "if"…), ignoring friendly
/// negatives such as "no problem".
pub fn is_rejection(text: &str) -> bool {
    let mut scrubbed = text.to_ascii_lowercase();
    for f in FRIENDLY_NEGATIVES {
        scrubbed = scrubbed.replace(f, " ");
    }
    contains_any(&scrubbed, REJECTION)
}

/// Whether `text` proposes something: a question, or a proposing phrase.
pub fn proposes(text: &str) -> bool {
    const CUES: &[&str] = &[
        "let's",
        "lets",
        "shall we",
        "can we",
        "could we",
        "how about",
        "what about",
        "would you",
        "i'll send",
        "i will send",
        "i can send",
        "let me send",
        "i'll set up",
        "i'll book",
        "i can book",
        "i'll put",
        "works for you",
        "are you free",
        "are you available",
        "i suggest",
        "i propose",
    ];
    text.contains('?') || contains_any(text, CUES)
}

/// Content words of a description: lowercase, length ≥ 4, minus common stop words.
pub fn keywords(text: &str) -> Vec<String> {
    const STOP: &[&str] = &[
        "that", "this", "with", "from", "they", "them", "their", "there", "what", "when", "where",
        "which", "while", "about", "into", "your", "yours", "have", "has", "will", "would",
        "should", "could", "does", "doing", "done", "been", "were", "than", "then", "also", "each",
        "other", "more", "most", "very", "just", "such", "only", "some", "like", "well", "make",
        "makes", "sure", "call", "calls", "trainee", "customer", "rep", "uses", "using", "before",
        "after", "during", "it's", "that's", "we're", "you're", "i'm", "don't", "good", "right",
        "really", "honestly", "sounds", "think", "want", "know",
    ];
    let mut out: Vec<String> = Vec::new();
    for w in words(text) {
        if w.len() >= 4 && !STOP.contains(&w.as_str()) && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// A crude English stem, enough for "route"/"routes"/"routing" or "plan"/"planning" to meet.
pub fn stem(word: &str) -> String {
    let w = word.trim_matches('\'').to_ascii_lowercase();
    let w = w.strip_suffix("'s").unwrap_or(&w).to_string();
    let mut base = w.as_str();
    for suffix in [
        "ings", "ing", "ers", "ies", "ied", "ed", "es", "er", "ly", "s",
    ] {
        if let Some(b) = base.strip_suffix(suffix)
            && b.chars().count() >= 3
        {
            // "boxes" loses "es", "stores" only its "s" (so it meets "store").
            if suffix == "es" && !["s", "x", "z", "ch", "sh"].iter().any(|e| b.ends_with(e)) {
                continue;
            }
            base = b;
            break;
        }
    }
    base.chars().take(6).collect()
}

/// Number words, so "forty drivers" meets "40 drivers" as a fact the customer gave.
const NUMBER_WORDS: &[&str] = &[
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "fifteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    "hundred", "thousand", "million", "half", "percent", "dozen", "dozens",
];

/// Words too common in sales talk to show that the rep picked up what the customer said.
const COMMON: &[&str] = &[
    "about",
    "actually",
    "again",
    "always",
    "anything",
    "because",
    "being",
    "better",
    "could",
    "every",
    "everything",
    "going",
    "great",
    "hear",
    "honest",
    "honestly",
    "just",
    "know",
    "look",
    "lot",
    "maybe",
    "much",
    "need",
    "needs",
    "people",
    "pretty",
    "problem",
    "quite",
    "really",
    "said",
    "says",
    "something",
    "still",
    "team",
    "thank",
    "thanks",
    "that's",
    "there's",
    "thing",
    "things",
    "think",
    "those",
    "time",
    "today",
    "want",
    "wants",
    "what's",
    "where's",
    "work",
    "works",
    "would",
    "yeah",
    "you've",
    "we've",
    "they're",
    "i've",
    "i'll",
    "we'll",
    "you'll",
    "can't",
    "won't",
    "doesn't",
    "isn't",
    "didn't",
    "okay",
    "sure",
    "other",
    "right",
    "kind",
    "sort",
    "mean",
    "fine",
    "good",
    "well",
    "here",
    "into",
    "onto",
    "these",
    "them",
    "then",
    "than",
    "this",
    "that",
    "with",
    "from",
    "have",
    "your",
    "yours",
    "will",
    "what",
    "when",
    "which",
    "while",
    "were",
    "been",
    "does",
    "done",
    "also",
    "very",
    "only",
    "some",
    "such",
    "more",
    "most",
    "like",
    "make",
    "sounds",
    "call",
    "calls",
    "please",
    "saying",
    "tell",
    "told",
    "telling",
    "mean",
    "means",
    "meant",
    "talk",
    "talking",
];

/// Three-letter words that carry no content.
const SHORT_COMMON: &[&str] = &[
    "the", "and", "you", "for", "are", "but", "not", "was", "our", "can", "how", "who", "why",
    "all", "any", "one", "get", "got", "has", "had", "his", "her", "its", "did", "too", "yes",
    "yet", "now", "new", "way", "out", "off", "own", "see", "say", "let", "put", "use", "via",
    "per", "bit", "lot", "day", "let's", "i'm", "i'd", "it's", "he's", "she", "him", "they", "ask",
    "try", "sure", "way", "may", "two", "few", "far", "big", "oh", "hey", "hi", "bye", "ago",
    "got", "set", "top", "end", "run", "job", "etc", "i'll",
];

/// Content stems of `text`: words of four letters or more outside the common ones, plus
/// numbers and number words (which carry the customer's facts).
pub fn content_stems(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(text) {
        let w = w.trim_matches('\'').to_string();
        let numeric = w.chars().any(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&w.as_str());
        let len = w.chars().count();
        let keep = numeric
            || (len >= 4 && !COMMON.contains(&w.as_str()))
            || (len == 3 && !SHORT_COMMON.contains(&w.as_str()));
        if !keep {
            continue;
        }
        let s = if numeric { w.clone() } else { stem(&w) };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Numbers and number words of `text`.
pub fn number_tokens(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| {
            (w.chars().any(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&w.as_str()))
                && !matches!(
                    w.as_str(),
                    "half" | "percent" | "hundred" | "thousand" | "dozen"
                )
        })
        .collect()
}

/// How many of `needles` occur in `hay`.
pub fn shared(needles: &[String], hay: &[String]) -> usize {
    needles.iter().filter(|n| hay.contains(n)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrase_matching_respects_word_boundaries_and_case() {
        assert_eq!(
            find_phrase("I hear you, Dana.", "i hear you"),
            Some((0, 10))
        );
        assert_eq!(find_phrase("Thanks!", "thank"), None);
        assert_eq!(find_phrase("a demo?", "demo"), Some((2, 6)));
        assert_eq!(find_phrase("démo demo", "demo"), Some((6, 10)));
    }

    #[test]
    fn sentences_and_questions() {
        let t = "Hi there. What keeps you up at night? We cost $3.5k per year!";
        let s: Vec<&str> = sentences(t).into_iter().map(|(a, b)| &t[a..b]).collect();
        assert_eq!(
            s,
            vec![
                "Hi there.",
                "What keeps you up at night?",
                "We cost $3.5k per year!"
            ]
        );
        assert_eq!(questions(t).len(), 1);
        assert!(is_question("how do you handle onboarding today"));
        assert!(is_open_question("Tell me about your team."));
        assert!(!is_open_question("Do you like it?"));
    }

    #[test]
    fn time_expressions() {
        assert!(find_time_expr("Does Tuesday work?").is_some());
        assert!(find_time_expr("How about 3pm").is_some());
        assert!(find_time_expr("say 10:30?").is_some());
        assert!(find_time_expr("at 2 then").is_some());
        assert!(find_time_expr("we have 20 reps").is_none());
    }

    #[test]
    fn acceptance_and_rejection() {
        assert!(accepts("Sure, Tuesday works.").is_some());
        assert!(accepts("No problem, send it over.").is_some());
        assert!(accepts("Sure, but not this week.").is_none());
        assert!(accepts("I'm not interested.").is_none());
        assert!(accepts("Let me think about it.").is_none());
    }

    #[test]
    fn stems_meet_across_inflections() {
        assert_eq!(stem("stores"), stem("store"));
        assert_eq!(stem("routes"), stem("route"));
        assert_eq!(stem("planning"), stem("plann"));
        assert_eq!(stem("boxes"), "box");
        let c = content_stems("We lost forty drivers' hours, 2 depots");
        assert!(c.contains(&"forty".to_string()) && c.contains(&"2".to_string()));
    }

    #[test]
    fn fillers() {
        assert_eq!(filler_count("Um, so, you know, it's uh fine"), 3);
    }
}
