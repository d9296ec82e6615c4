/**
 * Binary search in a sorted list of names (repository catalogs, a page of tags).
 *
 * @module
 */

/** Index of the first name greater than `key` in a sorted list. */
export function upperBound(names: readonly string[], key: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (names[mid]! <= key) low = mid + 1;
    else high = mid;
  }
  return low;
}
