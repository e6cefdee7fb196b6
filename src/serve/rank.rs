//! What ranking shares between the paths that score many rows in pieces (`wgrec serve`'s
//! micro-batches, `wgrec predict --policy`, `wgrec policy`'s substituted rows): the beliefs of
//! consecutive submissions joined into one over all their rows, so a request whose candidates
//! straddle two submissions is ranked on one [`Belief`].

use crate::error::{Error, Result};
use crate::explore::Belief;

/// Appends `part` (the belief of the next rows) to `all`; `None` parts (a model without a head)
/// leave `all` as it is. Parts of another kind or shape are an error (one model gives them all).
pub fn append_belief(all: &mut Option<Belief>, part: Option<Belief>) -> Result<()> {
    let Some(part) = part else {
        return Ok(());
    };
    match all {
        None => *all = Some(part),
        Some(a) => {
            let same = a.kind == part.kind
                && a.outputs == part.outputs
                && a.width == part.width
                && a.active == part.active;
            if !same {
                return Err(Error::Graph(
                    "two submissions' beliefs have different shapes".into(),
                ));
            }
            a.values.extend_from_slice(&part.values);
        }
    }
    Ok(())
}
