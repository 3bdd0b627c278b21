//! An oversized request is RESOURCE_EXHAUSTED, as gRPC's own servers answer
//! it (tonic says OUT_OF_RANGE). Rewrites the trailers-only response tonic
//! sends when a request message exceeds the server's decoding limit.

use http::HeaderValue;

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
/// tonic's message for an oversized request, percent-encoded on the wire.
const TOO_LARGE: &str = "message%20length%20too%20large";

pub fn rewrite<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = headers
        .get(GRPC_STATUS)
        .is_some_and(|status| status.as_bytes() == b"11");
    let too_large = headers
        .get(GRPC_MESSAGE)
        .and_then(|message| message.to_str().ok())
        .is_some_and(|message| {
            message.contains(TOO_LARGE) || message.contains("message length too large")
        });
    if out_of_range && too_large {
        headers.insert(GRPC_STATUS, HeaderValue::from_static("8"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_oversize_error_is_rewritten() {
        let response = |status: &'static str, message: &'static str| {
            let mut response = http::Response::new(());
            response
                .headers_mut()
                .insert(GRPC_STATUS, HeaderValue::from_static(status));
            response
                .headers_mut()
                .insert(GRPC_MESSAGE, HeaderValue::from_static(message));
            response
        };
        let rewritten = rewrite(response(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%2099%20bytes",
        ));
        assert_eq!(rewritten.headers()[GRPC_STATUS], "8");
        let other = rewrite(response("11", "sequence%2012%20is%20no%20longer%20held"));
        assert_eq!(other.headers()[GRPC_STATUS], "11");
        let ok = rewrite(response("0", ""));
        assert_eq!(ok.headers()[GRPC_STATUS], "0");
    }
}
