// Injection tokens for what the module provides.

/** The checked contract (`Contract`). */
export const CONTRACT = Symbol('scaleplan:contract');
/** The database pools (`Pools`). */
export const POOLS = Symbol('scaleplan:pools');
/** The app's Redis client (`RedisClient`). */
export const REDIS = Symbol('scaleplan:redis');
/** The module's options (`ScalingModuleOptions`). */
export const OPTIONS = Symbol('scaleplan:options');
