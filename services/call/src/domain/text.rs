//! Small, allocation-light text helpers shared by the scripted persona: tokenising, crude
//! stemming and phrase matching. Deliberately simple: the persona must be deterministic and
//! cheap (it answers 1,000 concurrent streams on two cores), not clever.

/// Words that carry no topic on their own; excluded from keyword matching.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing",
    "don't", "for", "from", "get", "got", "had", "has", "have", "having", "he", "her", "here",
    "him", "his", "how", "i", "i'd", "i'll", "i'm", "i've", "if", "in", "into", "is", "it", "it's",
    "its", "just", "know", "let", "let's", "like", "me", "more", "most", "much", "my", "no", "not",
    "now", "of", "on", "one", "or", "other", "our", "ours", "out", "over", "really", "right",
    "say", "she", "should", "so", "some", "such", "tell", "than", "that", "that's", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "up", "us",
    "very", "was", "we", "we're", "we've", "well", "were", "what", "what's", "when", "where",
    "which", "while", "who", "why", "will", "with", "would", "yes", "yet", "you", "you're", "your",
    "yours",
];

/// Lower-cased words of `text`: letters, digits and inner apostrophes (typographic ones
/// folded to ASCII so "that’s" matches "that's").
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        let c = if c == '\u{2019}' || c == '\u{2018}' {
            '\''
        } else {
            c
        };
        if c.is_alphanumeric() || (c == '\'' && !cur.is_empty()) {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur).trim_end_matches('\'').to_owned());
        }
    }
    if !cur.is_empty() {
        out.push(cur.trim_end_matches('\'').to_owned());
    }
    out
}

/// The words joined by single spaces and padded with one space on each side, so a phrase
/// can be matched on word boundaries with a plain substring search.
pub fn normalized(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push(' ');
    for w in words(text) {
        s.push_str(&w);
        s.push(' ');
    }
    s
}

/// Whether `normalized_text` (from [`normalized`]) contains any of `phrases` on word
/// boundaries. Phrases are lower-case words separated by single spaces.
pub fn contains_any(normalized_text: &str, phrases: &[&str]) -> bool {
    // Allocation-free word-boundary search: this runs for every phrase on every turn.
    phrases.iter().any(|p| {
        normalized_text.match_indices(p).any(|(at, _)| {
            let before = normalized_text[..at].ends_with(' ');
            let after = normalized_text[at + p.len()..].starts_with(' ');
            before && after
        })
    })
}

/// A crude English stem: enough for "price"/"prices"/"pricing" or "integrate"/"integrations"
/// to meet, which is all keyword matching needs.
pub fn stem(word: &str) -> String {
    let mut w = word.trim_matches('\'');
    if let Some(base) = w.strip_suffix("'s") {
        w = base;
    }
    for suffix in [
        "ations", "ation", "ings", "ing", "ies", "ed", "es", "ly", "s",
    ] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            w = base;
            break;
        }
    }
    let mut s = w.to_owned();
    if s.chars().count() >= 4 && s.ends_with('e') {
        s.pop();
    }
    s
}

/// Topic words of `text`: stems of the words that are not stop words and are at least three
/// letters long, deduplicated, in order of first appearance.
pub fn keywords(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(text) {
        if w.chars().count() < 3 || STOP_WORDS.contains(&w.as_str()) {
            continue;
        }
        let s = stem(&w);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Whether two stems name the same topic: equal, or one a prefix of the other when the
/// shorter has at least five letters ("integrat" ~ "integration").
fn stems_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 5 && long.starts_with(short)
}

/// How many of `needles` occur (by stem) among `haystack`.
pub fn overlap(needles: &[String], haystack: &[String]) -> usize {
    needles
        .iter()
        .filter(|n| haystack.iter().any(|h| stems_match(n, h)))
        .count()
}

/// Splits `text` into sentences at '.', '!', '?' and line breaks, trimmed, empty ones dropped.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            push_sentence(&mut out, &mut cur);
            continue;
        }
        cur.push(c);
        // A stop followed by whitespace (or the end) ends a sentence; "3.5" or "e.g" do not.
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            push_sentence(&mut out, &mut cur);
        }
    }
    push_sentence(&mut out, &mut cur);
    out
}

fn push_sentence(out: &mut Vec<String>, cur: &mut String) {
    let s = cur.trim();
    if !s.is_empty() {
        out.push(s.to_owned());
    }
    cur.clear();
}

/// `s` ending with sentence punctuation, so it can be followed by another sentence.
pub fn as_sentence(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() || t.ends_with(['.', '!', '?']) {
        t.to_owned()
    } else {
        format!("{t}.")
    }
}

/// `s` with its first letter lower-cased and trailing punctuation removed, to embed it in a
/// longer sentence ("my concern that the price is too high").
pub fn as_clause(s: &str) -> String {
    let t = s.trim().trim_end_matches(['.', '!', '?', ';', ':', ',']);
    let mut chars = t.chars();
    match chars.next() {
        // Keep acronyms and "I" as they are.
        Some(first) if chars.clone().next().is_some_and(|c| c.is_lowercase()) && first != 'I' => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_and_apostrophes() {
        assert_eq!(
            words("That’s FAIR, isn't it?"),
            ["that's", "fair", "isn't", "it"]
        );
    }

    #[test]
    fn phrases_match_on_word_boundaries() {
        let n = normalized("Could we design a plan?");
        assert!(!contains_any(&n, &["sign"]));
        assert!(contains_any(&n, &["design a"]));
    }

    #[test]
    fn stems_meet() {
        assert_eq!(stem("pricing"), stem("prices"));
        assert_eq!(stem("price"), stem("prices"));
        assert!(overlap(&keywords("integrations"), &keywords("integrate")) == 1);
    }

    #[test]
    fn sentences_split_but_keep_decimals() {
        assert_eq!(
            sentences("Budget is 3.5k. We use Excel!\nTeam of 12"),
            ["Budget is 3.5k.", "We use Excel!", "Team of 12"]
        );
    }
}
