/** The part of `bcryptjs` berth uses (declared here so its npm types do not pull in Node's globals). */
export function compare(password: string, hash: string): Promise<boolean>;
