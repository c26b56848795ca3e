//! Session views shared by every reader: a lobby's view is made once per change (on first read
//! after it), and every live page and `GET …/view` of that lobby gets the same bytes, so no
//! reader makes the server verify a lobby again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mpcnet_proto::LobbyId;
use tokio::sync::OnceCell;

/// One view being made or made; readers that come while it is being made wait for it.
type Cell = Arc<OnceCell<Arc<str>>>;

/// The views of lobbies read since their last change.
#[derive(Debug, Default)]
pub struct SharedViews(Mutex<HashMap<LobbyId, Cell>>);

impl SharedViews {
    fn cells(&self) -> MutexGuard<'_, HashMap<LobbyId, Cell>> {
        crate::lock(&self.0)
    }

    /// `id`'s view: the one made since its last change, or the one `make` makes now (once,
    /// however many readers wait). A failure is not kept (a reader of a lobby that does not
    /// exist leaves nothing behind).
    pub async fn get<E>(
        &self,
        id: LobbyId,
        make: impl Future<Output = Result<Arc<str>, E>>,
    ) -> Result<Arc<str>, E> {
        let cell = self.cells().entry(id).or_default().clone();
        let made = cell.get_or_try_init(|| make).await.cloned();
        if made.is_err() {
            let mut cells = self.cells();
            if cells.get(&id).is_some_and(|kept| Arc::ptr_eq(kept, &cell)) {
                cells.remove(&id);
            }
        }
        made
    }

    /// Forgets `id`'s view (`None`: every view), after a change.
    pub fn forget(&self, id: Option<LobbyId>) {
        match id {
            Some(id) => self.cells().remove(&id),
            None => {
                self.cells().clear();
                None
            }
        };
    }

    /// How many views are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.cells().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mpcnet_proto::JoinSecret;

    use super::*;

    #[tokio::test]
    async fn a_view_is_made_once_per_change_and_failures_are_not_kept() {
        let views = SharedViews::default();
        let id = JoinSecret::generate().lobby_id();
        let made = AtomicUsize::new(0);
        let make = || async {
            made.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Arc::from("view"))
        };
        for _ in 0..10 {
            assert_eq!(&*views.get(id, make()).await.expect("view"), "view");
        }
        assert_eq!(made.load(Ordering::SeqCst), 1, "ten readers, one view");
        views.forget(Some(id));
        views.get(id, make()).await.expect("view");
        assert_eq!(made.load(Ordering::SeqCst), 2, "a change makes it again");

        let missing = JoinSecret::generate().lobby_id();
        assert!(
            views
                .get(missing, async { Err::<Arc<str>, _>(()) })
                .await
                .is_err()
        );
        assert_eq!(views.len(), 1, "the failed read left nothing");
    }
}
