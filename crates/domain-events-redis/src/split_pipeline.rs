//! Pipelines on Redis Cluster: the cluster client sends a pipeline to one node, so one whose
//! commands touch several hash slots (a batch emit over several categories, the reads or done
//! checks of a consumer of several categories) is split into one pipeline per slot, sent at
//! once, and the answers put back in the order of the commands.
//!
//! A command without a key (`SCRIPT LOAD` ahead of the calls after a `NOSCRIPT`) goes into every
//! slot's pipeline, so each node that runs a call has the script first; its answer is the first
//! node's.

use std::collections::HashMap;

use futures_util::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, RedisError, Value};

/// Sends `pipeline` (its commands `offset..offset + count` answered, as
/// [`ConnectionLike::req_packed_commands`]) on `cluster`, one pipeline per hash slot.
pub(crate) async fn send_split(
    cluster: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> Result<Vec<Value>, RedisError> {
    let groups = by_slot(pipeline);
    if pipeline.is_transaction() || groups.len() <= 1 {
        return cluster.req_packed_commands(pipeline, offset, count).await;
    }
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let sends = groups.iter().map(|indices| {
        let mut part = Pipeline::with_capacity(indices.len());
        for &index in indices {
            part.add_command(commands[index].clone());
        }
        let mut conn = cluster.clone();
        async move { conn.req_packed_commands(&part, 0, part.len()).await }
    });
    let answers = try_join_all(sends).await?;
    let mut ordered: Vec<Option<Value>> = vec![None; commands.len()];
    for (indices, values) in groups.iter().zip(answers) {
        for (&index, value) in indices.iter().zip(values) {
            ordered[index].get_or_insert(value);
        }
    }
    ordered
        .into_iter()
        .skip(offset)
        .take(count)
        .map(|value| {
            value.ok_or_else(|| {
                RedisError::from((
                    redis::ErrorKind::Parse,
                    "split pipeline",
                    "a command got no answer".to_owned(),
                ))
            })
        })
        .collect()
}

/// The indices of `pipeline`'s commands per hash slot, in order; keyless commands in every
/// group (or in one group when no command has a key).
fn by_slot(pipeline: &Pipeline) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<Slot, usize> = HashMap::new();
    let mut keyless = Vec::new();
    for (index, cmd) in pipeline.cmd_iter().enumerate() {
        match key_of(cmd) {
            Some(key) => {
                let slot = Slot::for_key(key);
                let group = *group_of.entry(slot).or_insert_with(|| {
                    groups.push(keyless.clone());
                    groups.len() - 1
                });
                groups[group].push(index);
            }
            None => {
                keyless.push(index);
                for group in &mut groups {
                    group.push(index);
                }
            }
        }
    }
    if groups.is_empty() {
        groups.push(keyless);
    }
    groups
}

/// The key that routes `cmd`: the first key of a script call, the first stream of a read, the
/// argument after the subcommand of `XINFO`-like commands, else the first argument; `None` for commands without a key (`SCRIPT`, `PING`, ...).
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => bytes,
            _ => &b""[..],
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            (keys > 0).then(|| args.get(3).copied()).flatten()
        }
        b"XREAD" | b"XREADGROUP" => {
            let streams = args
                .iter()
                .position(|arg| arg.eq_ignore_ascii_case(b"STREAMS"))?;
            args.get(streams + 1).copied()
        }
        b"XINFO" | b"XGROUP" | b"OBJECT" | b"MEMORY" => args.get(2).copied(),
        b"SCRIPT" | b"PING" | b"INFO" | b"CLUSTER" | b"FUNCTION" | b"CONFIG" | b"CLIENT" => None,
        _ => args.get(1).copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_grouped_per_slot_with_keyless_ones_in_every_group() {
        let mut pipe = Pipeline::new();
        pipe.cmd("SCRIPT").arg("LOAD").arg("return 1");
        pipe.cmd("EVALSHA").arg("abc").arg(1).arg("s:{a}").arg("x");
        pipe.cmd("EXISTS").arg("done:{b}:1");
        pipe.cmd("EVALSHA")
            .arg("abc")
            .arg(2)
            .arg("s:{a}")
            .arg("d:{a}");
        pipe.cmd("XCLAIM").arg("s:{b}").arg("g");
        assert_eq!(by_slot(&pipe), vec![vec![0, 1, 3], vec![0, 2, 4]]);

        let mut one = Pipeline::new();
        one.cmd("EXISTS").arg("{a}1");
        one.cmd("EXISTS").arg("{a}2");
        assert_eq!(by_slot(&one), vec![vec![0, 1]]);

        let mut keyless = Pipeline::new();
        keyless.cmd("PING");
        assert_eq!(by_slot(&keyless), vec![vec![0]]);
    }

    #[test]
    fn the_routing_key_of_each_command() {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("STREAMS")
            .arg("s1")
            .arg(">");
        assert_eq!(key_of(&read), Some(&b"s1"[..]));
        let mut keyless_script = redis::cmd("EVALSHA");
        keyless_script.arg("abc").arg(0);
        assert_eq!(key_of(&keyless_script), None);
        let mut exists = redis::cmd("EXISTS");
        exists.arg("k");
        assert_eq!(key_of(&exists), Some(&b"k"[..]));
        let mut info = redis::cmd("XINFO");
        info.arg("GROUPS").arg("s2");
        assert_eq!(key_of(&info), Some(&b"s2"[..]));
    }
}
