//! The edges of every RPC, written once: the caller and the message out of a tonic request,
//! and a use case's result into a response or a status.

use tonic::{Request, Response, Status};

use crate::{ApiResult, Principal};

/// The authenticated caller (set by the runtime's auth layer) and the request message.
/// The principal is taken out of the request's extensions, not copied.
pub fn request<T>(req: Request<T>) -> Result<(Principal, T), Status> {
    let (_, mut extensions, message) = req.into_parts();
    let principal = extensions
        .remove::<Principal>()
        .ok_or_else(|| Status::unauthenticated("missing credentials"))?;
    Ok((principal, message))
}

/// A use case's answer as a response, its error as a status.
pub fn reply<T>(r: ApiResult<T>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}
