/**
 * Test files that sign up an account per test: the default limit of sign-ups per
 * address (20 an hour) is for the world, and every test signs up from 127.0.0.1.
 */
export const MANY_SIGNUPS = { PGWAKE_SIGNUP_RATE_LIMIT_PER_ADDRESS: '1000' };
