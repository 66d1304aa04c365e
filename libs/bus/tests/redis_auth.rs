//! Redis AUTH (issue 11): the Redis Streams transport connects with a password in the URL
//! (`redis://:password@host:port`, as the manifests use), and a wrong or missing password
//! fails with a clear error instead of hanging. The test starts its own `redis-server` on a
//! free loopback port with `--requirepass` and stops it at the end (also on panic).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{OwnRedis, bounded, envelope, unique};
use salestrainer_bus::{RedisOptions, RedisStreamsTransport, SubscribeOptions, Transport};

const PASSWORD: &str = "s3cret-pass_word";

fn fast() -> SubscribeOptions {
    SubscribeOptions {
        batch_size: 1,
        block: Duration::from_millis(100),
        visibility_timeout: Duration::from_millis(200),
        claim_interval: Duration::from_millis(50),
        ..SubscribeOptions::default()
    }
}

#[tokio::test]
async fn password_in_the_url_authenticates_and_a_wrong_one_is_refused() {
    let server = OwnRedis::start(Some(PASSWORD), None);
    bounded(async {
        // The right password: publish, consume, ack.
        let t =
            RedisStreamsTransport::from_url(&server.url(Some(PASSWORD)), RedisOptions::default())
                .unwrap();
        let topic = unique("auth-test");
        let mut sub = t.subscribe(&topic, "g", "c1", fast()).await.unwrap();
        let env = envelope(&topic, 1);
        t.publish(&env).await.unwrap();
        let d = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("no delivery within 5 s")
            .expect("subscription closed");
        assert_eq!(d.envelope, env);
        d.ack().await.unwrap();
        assert_eq!(t.pending_count(&topic, "g").await.unwrap(), 0);
        drop(sub);

        // A wrong password, and none at all: a clear error at once, for publish and subscribe.
        for (url, words) in [
            (server.url(Some("wrong-password")), ["wrongpass", "auth"]),
            (server.url(None), ["noauth", "auth"]),
        ] {
            let bad = RedisStreamsTransport::from_url(&url, RedisOptions::default()).unwrap();
            let started = Instant::now();
            let err = bad.publish(&envelope(&topic, 2)).await.unwrap_err();
            let sub_err = bad
                .subscribe(&topic, "g", "c2", fast())
                .await
                .map(|_| ())
                .unwrap_err();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "took {:?}",
                started.elapsed()
            );
            for e in [err.to_string(), sub_err.to_string()] {
                let lower = e.to_ascii_lowercase();
                assert!(
                    words.iter().any(|w| lower.contains(w)),
                    "unclear error for {url}: {e}"
                );
                assert!(!e.contains(PASSWORD), "the error shows the password: {e}");
            }
        }
        // Nothing the refused clients tried reached the stream.
        let mut conn = t.pool().get().await.unwrap();
        let len: u64 = redis::cmd("XLEN")
            .arg(&topic)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(len, 1);
    })
    .await;
    drop(server);
}
