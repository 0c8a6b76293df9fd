/**
 * redisconn client: exclusive connections (`Conn`), a pool that lends them
 * out, pub/sub, scripts, reply and struct helpers, and our own RESP codec.
 * This module never imports Fastify.
 */
export type { HandshakeCommand } from './errors.js';
export { ClusterError, ConnClosedError, CrossSlotError, HandshakeError, ManyServersError, PoolClosedError, PoolExhaustedError, ProtocolError, RedisConnError, RedisError, SentinelError, TimeoutError } from './errors.js';
export type { Arg, PrimitiveArg, RedisArgument } from './resp/encode.js';
export { CommandWriter, encodeCommand } from './resp/encode.js';
export type { DecoderOptions, Reply } from './resp/decode.js';
export { Decoder, NEED_MORE } from './resp/decode.js';
export type { DeadlineHooks } from './deadline.js';
export { MAX_TIMEOUT_MS, checkTimeoutMs, withinDeadline } from './deadline.js';
export type { Conn, ConnOptions } from './conn.js';
export type { CommandTraceContext, ConnectTraceContext, ConnectionKind, PoolGetTraceContext, SettledContext } from './diagnostics.js';
export { commandChannel, connectChannel, poolGetChannel } from './diagnostics.js';
export type { CommandInfo, RequestPolicy, ResponsePolicy, Route } from './commands.js';
export { commandInfo, keyIndexes, routeOf } from './commands.js';
export { newConn } from './conn.js';
export type { DialOptions, Endpoint } from './dial.js';
export { dial, parseAddress } from './dial.js';
export type { ParsedURL } from './url.js';
export { dialURL, parseURL, redactURL } from './url.js';
export type { GetOptions, PoolOptions, PoolStats } from './pool.js';
export { Pool, newPool } from './pool.js';
export type { ConnSource, NodeRole, NodeStats, SourceStats } from './source.js';
export type { ClusterOptions, ClusterStats, ReadFrom, RefreshCounts, RefreshTrigger } from './cluster/cluster.js';
export { Cluster, newCluster } from './cluster/cluster.js';
export type { RedirectKind } from './cluster/redirect.js';
export type { AddressMap } from './cluster/topology.js';
export { SLOT_COUNT, slotOf } from './cluster/slot.js';
export type { SentinelPoolOptions, SentinelStats } from './sentinel/sentinelpool.js';
export { SentinelPool, newSentinelPool } from './sentinel/sentinelpool.js';
export type { ReplyKind, ReplyKinds } from './reply.js';
export { asBigInt, asBool, asBytes, asFloat, asFloats, asInt, asIntMap, asInts, asString, asStringMap, asStrings, asValues } from './reply.js';
export type { FieldName, FieldType, FlatObject, StructOf, StructSchema } from './args.js';
export { flattenArgs, scanStruct, scanStructTyped } from './args.js';
export type { PubSubArg, PubSubMessage, PubSubNotification, PubSubOptions, PubSubPong, PubSubSubscription, SubscriptionKind } from './pubsub.js';
export { PubSubConn } from './pubsub.js';
export type { ScriptRunner } from './script.js';
export { Script } from './script.js';
export type { LoggingConnLogger, LoggingConnOptions } from './logging.js';
export { newLoggingConn } from './logging.js';
