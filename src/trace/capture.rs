//! The check that `LogCapture` and `TracingCapture` run over what they captured (feature
//! `test-util`).

use std::collections::HashMap;
use std::hash::Hash;

/// The first line that fails the check, by its index.
pub(crate) enum Mismatch<'a> {
    /// Emitted inside a request, with no correlation ID.
    NoCorrelationId(usize),
    /// Emitted inside a request whose first line carried `first`, with `second`.
    MixedIds { index: usize, first: &'a str, second: &'a str },
}

/// Checks the lines that `request_of` attributes to a request: each must carry a
/// correlation ID (`id_of`), the same for every line of one request. Returns how many lines
/// were checked.
pub(crate) fn check<'a, T, K: Eq + Hash>(
    lines: &'a [T],
    request_of: impl Fn(&T) -> Option<K>,
    id_of: impl Fn(&'a T) -> Option<&'a str>,
) -> Result<usize, Mismatch<'a>> {
    let mut ids: HashMap<K, &str> = HashMap::new();
    let mut checked = 0;
    for (index, line) in lines.iter().enumerate() {
        let Some(request) = request_of(line) else { continue };
        checked += 1;
        let Some(id) = id_of(line) else {
            return Err(Mismatch::NoCorrelationId(index));
        };
        let first = *ids.entry(request).or_insert(id);
        if first != id {
            return Err(Mismatch::MixedIds { index, first, second: id });
        }
    }
    Ok(checked)
}
