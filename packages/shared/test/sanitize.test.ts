import { describe, expect, it } from "vitest";
import { stripControlChars, stripControlCharsDeep } from "../src/sanitize.js";

describe("stripControlChars", () => {
  it("removes a clear-screen sequence with its parameters", () => {
    expect(stripControlChars("before\x1b[2Jafter\x1b[1;31mred\x1b[0m")).toBe("beforeafterred");
  });

  it("removes an OSC 52 clipboard write, terminated by BEL or by ST", () => {
    expect(stripControlChars("key \x1b]52;c;cm0gLXJmIC8K\x07name")).toBe("key name");
    expect(stripControlChars("key \x1b]52;c;cm0gLXJmIC8K\x1b\\name")).toBe("key name");
    // Unterminated: the rest is the sequence's payload, as a terminal would read it.
    expect(stripControlChars("key \x1b]0;title")).toBe("key ");
  });

  it("removes the bell and other lone C0 controls but keeps newline and tab", () => {
    expect(stripControlChars("ding\x07 dong\r\x00\x08\x7f\nnext\tcol")).toBe("ding dong\nnext\tcol");
    expect(stripControlChars("line\none\ttab", { keepNewlines: false })).toBe("line one tab");
  });

  it("removes C1 CSI (U+009B) with its parameters, and other C1 controls", () => {
    expect(stripControlChars("a\u009b2Jb\u009b31mc")).toBe("abc");
    expect(stripControlChars("x\u0085y\u008dz\u009d0;t\u009cw")).toBe("xyzw");
  });

  it("removes other escape sequences and text-reordering Unicode controls", () => {
    expect(stripControlChars("\x1bcreset\x1b(Bok")).toBe("resetok");
    expect(stripControlChars("abc\u202edcba\u2066x\u2069")).toBe("abcdcbax");
  });

  it("leaves ordinary text, including non-ASCII letters, unchanged", () => {
    const text = "Müller's check: ok — 12 ms (ß, 日本)";
    expect(stripControlChars(text)).toBe(text);
  });

  it("strips every string of a nested value, keys included, and keeps other values", () => {
    const value = { "k\x1b[2Jey": ["a\x07", { deep: "\x1b]52;c;eA==\x07b" }], n: 3, t: true, z: null };
    expect(stripControlCharsDeep(value)).toEqual({ key: ["a", { deep: "b" }], n: 3, t: true, z: null });
  });
});
