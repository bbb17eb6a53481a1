// Types of scripts/package-deb.mjs, for test/integration/package.test.ts.
/** The .deb's Depends: line, as dpkg-shlibdeps computes it for the pinned Node and koffi. */
export const DEPENDS: string;
