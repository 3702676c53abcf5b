-- wrk script: KServe v2 JSON inference on the digits demo model.
--   wrk -t2 -c64 -d10s --latency -s bench/digits.lua http://127.0.0.1:PORT [-- SAMPLE.json [PATH [HOST]]]
-- PATH and HOST (optional) send the request to a route-table URL instead of the KServe one.
-- POSTs SAMPLE.json (default models/digits/sample.json, relative to the working directory)
-- to /v2/models/digits/infer with Content-Type application/json, and reports non-200
-- responses in done().
--
-- Two counting modes, because a Lua response() callback costs wrk about 12% of its
-- throughput on 2 cores (measured against nginx), which would be charged to the server:
--   default            no per-response Lua; done() reports wrk's own count of responses with
--                      status >= 400 (modelgate never sends 1xx/201/3xx to this request).
--   MG_BENCH_CHECK=1   response() counts every status ~= 200 exactly and keeps the first
--                      offending status and body; bench/run.sh uses it for the warm-up run.

wrk.method = "POST"
wrk.path = "/v2/models/digits/infer"
wrk.headers["Content-Type"] = "application/json"

local function read_file(path)
   local f, err = io.open(path, "rb")
   if not f then
      error("digits.lua: cannot open " .. path .. ": " .. tostring(err))
   end
   local data = f:read("*a")
   f:close()
   return data
end

function init(args)
   local body = read_file(args[1] or "models/digits/sample.json")
   wrk.body = body:gsub("%s+$", "")
   if args[2] then
      wrk.path = args[2]
   end
   if args[3] then
      wrk.headers["Host"] = args[3]
   end
end

local strict = os.getenv("MG_BENCH_CHECK") == "1"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Per-thread state (globals, so done() can read them with thread:get()).
non200 = 0
first_status = 0
first_body = ""

if strict then
   function response(status, headers, body)
      if status ~= 200 then
         non200 = non200 + 1
         if first_status == 0 then
            first_status = status
            first_body = string.sub(body or "", 1, 300)
         end
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   if strict then
      local n, st, body = 0, 0, ""
      for _, t in ipairs(threads) do
         n = n + t:get("non200")
         if st == 0 and t:get("first_status") ~= 0 then
            st, body = t:get("first_status"), t:get("first_body")
         end
      end
      io.write(string.format("non-200 responses: %d of %d (exact count)\n", n, summary.requests))
      if n > 0 then
         io.write(string.format("first non-200: status %d body %s\n", st, body))
      end
   else
      io.write(string.format("non-200 responses: %d of %d (status >= 400, wrk's count)\n",
                             e.status, summary.requests))
   end
   io.write(string.format("socket errors: connect %d read %d write %d timeout %d\n",
                          e.connect, e.read, e.write, e.timeout))
end
