/**
 * Type-level assertions for the type tests (test/types/*.test-d.ts). They do
 * nothing at run time: the checks happen when tsc compiles the call.
 *
 * - `expectType(value).is<T>()` compiles only when the type of `value` is
 *   exactly `T`: not a subtype, not a supertype, not `any` (`const`, so a
 *   literal type is not widened: `'REDIS_TIMEOUT'` stays that, not `string`).
 * - `expectAssignable<T>(value)` compiles when `value` is usable as a `T`.
 * - misuse is a line under `// @ts-expect-error`, which tsc reports when the
 *   line compiles after all.
 */

/** True when A and B are the same type (the conditional-type identity check; `any` equals only `any`). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** What a wrong `is<T>()` asks for: an argument nobody passes, naming both types. */
type Mismatch<Actual, Expected> = [typeDiffers: { actual: Actual; expected: Expected }];

export function expectType<const Actual>(_value: Actual): { is<Expected>(...exact: Equal<Actual, Expected> extends true ? [] : Mismatch<Actual, Expected>): void } {
  return { is: () => undefined };
}

export function expectAssignable<T>(_value: T): void {}
