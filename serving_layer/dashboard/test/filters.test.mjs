// The filters' text form, as the API reads it (views/filters.py): ';' and '\' escaped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeFilter, formatFilters, parseFilters } from "../src/filters.js";

test("filters survive a round trip through their text, separators and escapes included", () => {
  const filters = [
    { dimension: "page", op: "==", value: "/a;b\\c" },
    { dimension: "country", op: "!=", value: "FR" },
    { dimension: "prop:plan", op: "=@", value: "pro" },
    { dimension: "source", op: "!@", value: "==;" },
  ];
  const text = formatFilters(filters);
  assert.equal(text, "page==/a\\;b\\\\c;country!=FR;prop:plan=@pro;source!@==\\;");
  assert.deepEqual(parseFilters(text), filters);
});

test("empty and malformed parts are left out", () => {
  assert.deepEqual(parseFilters(""), []);
  assert.deepEqual(parseFilters(";;page==/x;nonsense"), [{ dimension: "page", op: "==", value: "/x" }]);
});

test("a filter reads as words", () => {
  assert.equal(describeFilter({ dimension: "entry_page", op: "!@", value: "/blog" }), "Entry page does not contain /blog");
  assert.equal(describeFilter({ dimension: "prop:plan", op: "==", value: "pro" }), "Property plan is pro");
});
