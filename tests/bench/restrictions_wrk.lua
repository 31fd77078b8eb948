-- wrk script of bench_restrictions.py: GET the restrictions of a random seeded account.
--
-- Environment: BENCH_WRK_DATA, a Lua file returning {ids = {...}, etags = {...}};
-- BENCH_API_KEY, sent as the bearer key; BENCH_CONDITIONAL=1 adds If-None-Match with the account's ETag.
-- done() prints one line, "BENCH_RESULT {json}": counts, latency percentiles (microseconds), statuses.

local data = dofile(os.getenv("BENCH_WRK_DATA"))
local ids, etags = data.ids, data.etags
local conditional = os.getenv("BENCH_CONDITIONAL") == "1"
local authorization = "Bearer " .. os.getenv("BENCH_API_KEY")
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("number", #threads)
end

function init(args)
   math.randomseed(number * 7919 + os.time())
   statuses = {}
end

function request()
   local i = math.random(#ids)
   local headers = {Authorization = authorization}
   if conditional then
      headers["If-None-Match"] = etags[i]
   end
   return wrk.format("GET", "/api/v1/accounts/" .. ids[i] .. "/restrictions", headers)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         merged[status] = (merged[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(merged) do
      parts[#parts + 1] = string.format('"%d": %d', status, count)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"statuses": {%s}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, ", ")))
end
