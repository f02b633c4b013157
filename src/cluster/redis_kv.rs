//! [`Kv`] on Redis: one reconnecting connection (redis-rs's `ConnectionManager`) for everything
//! but blocking pops, which each take a connection of their own from a small pool (a `BLPOP`
//! holds its connection while it waits). The first connection is made on first use, so a node
//! starts while Redis is down and works once it is back.

use super::kv::{Kv, KvError};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Script};
use std::sync::Mutex;
use std::time::Duration;

/// How long a command may take before the store counts as unreachable.
const RESPONSE: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT: Duration = Duration::from_secs(1);

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const DEL_IF: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) else return 0 end";

/// Redis behind [`Kv`].
pub struct RedisKv {
    client: Client,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
    idle: Mutex<Vec<MultiplexedConnection>>,
    renew: Script,
    del_if: Script,
}

fn err(e: redis::RedisError) -> KvError {
    KvError(e.to_string())
}

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl RedisKv {
    /// A store at `url` (`redis://host:port[/db]`); nothing is connected yet.
    pub fn new(url: &str) -> Result<RedisKv, KvError> {
        Ok(RedisKv {
            client: Client::open(url).map_err(err)?,
            manager: tokio::sync::Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            renew: Script::new(RENEW),
            del_if: Script::new(DEL_IF),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, KvError> {
        let mut m = self.manager.lock().await;
        if let Some(c) = m.as_ref() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT))
            .set_response_timeout(Some(RESPONSE))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let c = self
            .client
            .get_connection_manager_with_config(cfg)
            .await
            .map_err(err)?;
        *m = Some(c.clone());
        Ok(c)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, KvError> {
        let mut c = self.conn().await?;
        cmd.query_async(&mut c).await.map_err(err)
    }

    async fn script(&self, s: &Script, key: &str, value: &str, arg: u64) -> Result<bool, KvError> {
        let mut c = self.conn().await?;
        let n: i64 = s
            .key(key)
            .arg(value)
            .arg(arg)
            .invoke_async(&mut c)
            .await
            .map_err(err)?;
        Ok(n == 1)
    }

    async fn blocking(&self, wait: Duration) -> Result<MultiplexedConnection, KvError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(c) = pooled {
            return Ok(c);
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT))
            .set_response_timeout(Some(wait + RESPONSE));
        self.client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(err)
    }
}

#[async_trait]
impl Kv for RedisKv {
    async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("NX").arg("PX").arg(ms(ttl));
        let r: Option<String> = self.run(&cmd).await?;
        Ok(r.is_some())
    }

    async fn renew(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        self.script(&self.renew, key, value, ms(ttl)).await
    }

    async fn del_if(&self, key: &str, value: &str) -> Result<bool, KvError> {
        self.script(&self.del_if, key, value, 0).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), KvError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(t) = ttl {
            cmd.arg("PX").arg(ms(t));
        }
        self.run::<()>(&cmd).await
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    async fn del(&self, key: &str) -> Result<(), KvError> {
        self.run::<()>(redis::cmd("DEL").arg(key)).await
    }

    async fn hset(&self, hash: &str, field: &str, value: &str) -> Result<(), KvError> {
        self.run::<()>(redis::cmd("HSET").arg(hash).arg(field).arg(value))
            .await
    }

    async fn hdel(&self, hash: &str, field: &str) -> Result<(), KvError> {
        self.run::<()>(redis::cmd("HDEL").arg(hash).arg(field))
            .await
    }

    async fn hget(&self, hash: &str, field: &str) -> Result<Option<String>, KvError> {
        self.run(redis::cmd("HGET").arg(hash).arg(field)).await
    }

    async fn hgetall(&self, hash: &str) -> Result<Vec<(String, String)>, KvError> {
        self.run(redis::cmd("HGETALL").arg(hash)).await
    }

    async fn sadd(&self, set: &str, member: &str) -> Result<(), KvError> {
        self.run::<()>(redis::cmd("SADD").arg(set).arg(member))
            .await
    }

    async fn srem(&self, set: &str, member: &str) -> Result<(), KvError> {
        self.run::<()>(redis::cmd("SREM").arg(set).arg(member))
            .await
    }

    async fn smembers(&self, set: &str) -> Result<Vec<String>, KvError> {
        self.run(redis::cmd("SMEMBERS").arg(set)).await
    }

    async fn push(&self, list: &str, value: &str) -> Result<(), KvError> {
        self.run::<()>(redis::cmd("RPUSH").arg(list).arg(value))
            .await
    }

    async fn pop(&self, list: &str, wait: Duration) -> Result<Option<String>, KvError> {
        let mut c = self.blocking(wait).await?;
        let secs = wait.as_secs_f64().max(0.01);
        let r: Result<Option<(String, String)>, _> = redis::cmd("BLPOP")
            .arg(list)
            .arg(secs)
            .query_async(&mut c)
            .await;
        match r {
            Ok(v) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
                Ok(v.map(|(_, v)| v))
            }
            // A broken connection is not pooled again.
            Err(e) => Err(err(e)),
        }
    }
}
