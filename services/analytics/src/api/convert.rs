//! The edges of every RPC: the caller and the message out of a tonic request, and a use
//! case's result into a response or a status.

use salestrainer_runtime::{ApiResult, Principal};
use tonic::{Request, Response, Status};

/// The authenticated caller (set by the runtime's auth layer) and the request message.
pub fn request<T>(req: Request<T>) -> Result<(Principal, T), Status> {
    let principal = Principal::of(&req)?.clone();
    Ok((principal, req.into_inner()))
}

pub fn reply<T>(r: ApiResult<T>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}
