//! A value that becomes available once start-up work (connect, migrate) is done. Handlers
//! answer UNAVAILABLE until then instead of blocking.

use std::sync::{Arc, OnceLock};

use crate::error::{ApiError, ApiResult};

#[derive(Debug)]
pub struct Ready<T>(Arc<OnceLock<T>>);

impl<T> Clone for Ready<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Ready<T> {
    fn default() -> Self {
        Self(Arc::new(OnceLock::new()))
    }
}

impl<T> Ready<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> ApiResult<&T> {
        self.0
            .get()
            .ok_or_else(|| ApiError::Unavailable("service is starting; retry shortly".into()))
    }

    /// Sets the value once; later calls are ignored.
    pub fn set(&self, value: T) {
        let _ = self.0.set(value);
    }

    pub fn is_ready(&self) -> bool {
        self.0.get().is_some()
    }
}
