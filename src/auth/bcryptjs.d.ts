/** The part of `bcryptjs` berth uses (declared here so its npm types do not pull in Node's globals). */
export function compareSync(password: string, hash: string): boolean;
