//! Where tokens come from.

use std::future::Future;
use std::pin::Pin;

use crate::error::BoxError;

/// A boxed future, as token providers return.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + 'a>>;

/// Gives the client a bearer token (a JWT) when it needs one: for every new
/// connection, for every command, and once more after the server refused
/// one (expired, or signed with a key the server no longer has), before the
/// client gives up with [`Error::Unauthorized`](crate::Error::Unauthorized).
///
/// A `String` (or `&'static str`) is a fixed token; [`token_fn`] turns an
/// async closure into a provider. Caching is the provider's business: the
/// client asks often.
pub trait TokenProvider: Send + Sync + 'static {
    /// A token to use now. `refresh` is true when the server refused the
    /// last one: a cache should fetch a new one.
    fn token(&self, refresh: bool) -> TokenFuture<'_>;
}

impl TokenProvider for String {
    fn token(&self, _refresh: bool) -> TokenFuture<'_> {
        Box::pin(std::future::ready(Ok(self.clone())))
    }
}

impl TokenProvider for &'static str {
    fn token(&self, _refresh: bool) -> TokenFuture<'_> {
        Box::pin(std::future::ready(Ok((*self).to_owned())))
    }
}

/// A provider made of an async closure, called with `refresh` each time a
/// token is needed.
///
/// ```
/// let provider = larder_client::token_fn(|_refresh| async {
///     Ok::<_, std::io::Error>(std::env::var("LARDER_TOKEN").unwrap_or_default())
/// });
/// # let _ = provider;
/// ```
pub fn token_fn<F, Fut, E>(f: F) -> FnToken<F>
where
    F: Fn(bool) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<BoxError>,
{
    FnToken(f)
}

/// See [`token_fn`].
#[derive(Debug, Clone)]
pub struct FnToken<F>(F);

impl<F, Fut, E> TokenProvider for FnToken<F>
where
    F: Fn(bool) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn token(&self, refresh: bool) -> TokenFuture<'_> {
        let future = (self.0)(refresh);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}
