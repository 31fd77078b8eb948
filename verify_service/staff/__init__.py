"""Staff sign-in: passwords, mandatory TOTP, throttling, revocable server-side sessions, single sign-on."""
