#!/bin/bash
# Every example of issue 21 through the installed console script `mecsplit` (run it in the venv):
#   bash tests/fuzz/issue21_examples.sh
# One line per example: the exit code and the start of stderr (expected: 2 for bad input, 1 for a refused
# claim, 0 for the valid 1,200-file extends chain; never 3, a traceback or ANOTHER FILE ECHOED). The regression tests are in
# tests/test_hardening.py.
set -u
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT; cd "$D"
M=mecsplit
run() { local label="$1"; shift; "$@" >out.txt 2>err.txt; local c=$?; printf '%-55s exit %s | %s\n' "$label" "$c" "$(head -c 220 err.txt | tr '\n' '~')$(cat out.txt err.txt | grep -q TOPSECRET && echo ' ANOTHER FILE ECHOED')"; }
echo 'secret_key = "TOPSECRET-4711"' > notvariant.toml
$M instance --variant default --users 4 --servers 2 --seed 1 -o inst.json >/dev/null 2>&1
$M solve --instance inst.json --solver greedy -o greedy.json >/dev/null 2>&1
v() { printf '[variant]\nextends = "default"\n%b' "$1" > v.toml; }
v '[generator]\nname = [1]\n';                run "generator.name=[1]" $M variants --show v.toml
v '[blocks.llm]\ntokens = {dist = [1]}\n';    run "tokens={dist=[1]}" $M variants --show v.toml
printf 'objective = 5\n[variant]\nextends = "default"\n' > v.toml; run "objective = 5" $M variants --show v.toml
printf '[variant]\nextends = "default"\nuser = 5\n' > v.toml; run "[variant] user=5" $M variants --show v.toml
v '[sizes]\nuser = 5\n';                      run "[sizes] user=5" $M variants --show v.toml
body=""; for b in $($M blocks | grep -oE '^\[blocks\.[a-z_]+\]' | sed 's/\[blocks\.//;s/\]//'); do body="$body[blocks.$b]\nenabled = false\n"; done
v "$body";                                    run "every block disabled" $M variants --show v.toml
python3 -c "print('[variant]\nextends = \"default\"\n[generator]\nside_km = ' + '['*500 + ']'*500)" > v.toml; run "nesting 500 (array)" $M variants --show v.toml
python3 -c "print('zz = ' + '{k = '*500 + '1' + '}'*500 + '\n[variant]\nextends = \"default\"')" > v.toml; run "nesting 500 (inline table)" $M variants --show v.toml
mkdir -p chain; printf '[variant]\nextends = "default"\n' > chain/c0.toml; for i in $(seq 1 1199); do printf '[variant]\nextends = "c%d"\n' $((i-1)) > chain/c$i.toml; done
run "extends chain 1200" $M variants --show chain/c1199.toml
run "solve --seed -1" $M solve --instance inst.json --solver greedy --seed -1
run "-o /nonexistent/x.json" $M solve --instance inst.json --solver greedy -o /nonexistent/x.json
mkdir -p adir; run "--instance DIR" $M solve --instance adir --solver greedy
printf 'x' > notadb.sqlite; run "bench report --db NOT_A_DB" $M bench report --db notadb.sqlite --out rep
run "bench report --db inst.json" $M bench report --db inst.json --out rep
run "--users 2^64" $M instance --users 18446744073709551616
for t in nan -1 0 inf; do run "--time-limit $t" $M solve --instance inst.json --solver greedy --time-limit $t; done
run "--option tol=NaN (liu-zhao)" $M solve --instance inst.json --solver liu-zhao --option tol=NaN
run "--option tol=NaN (greedy)" $M solve --instance inst.json --solver greedy --option tol=NaN
s() { printf '[defaults]\nvariants = ["default"]\nsizes = [[2, 1]]\nseeds = [1]\nsolvers = ["greedy"]\nreference = "none"\n%b' "$1" > s.toml; }
s 'time_limit_s = inf\n'; run "suite time_limit_s = inf" $M bench run s.toml --db s.sqlite --out rep --no-progress
printf '[defaults]\nvariants = ["default"]\nsizes = [[2, 1]]\nseeds = {count = 1000000000}\nsolvers = ["greedy"]\n' > s.toml; run "suite seeds count 1e9" $M bench run s.toml --db s.sqlite --out rep --no-progress
run "instance --users 10000000" $M instance --users 10000000
printf '[variant]\nextends = "default"\ndescription = "\xff"\n' > nu.toml; run "non-UTF-8 variant" $M variants --show nu.toml
printf '{"schema": "\xff"}' > nu.json; run "non-UTF-8 instance" $M solve --instance nu.json --solver greedy
run "non-UTF-8 result" $M check --instance inst.json nu.json
printf '# \xff\n[defaults]\nsolvers = ["greedy"]\n' > nus.toml; run "non-UTF-8 suite" $M bench run nus.toml --db s.sqlite --out rep --no-progress
mkdir -p benchmarks/suites; cp nus.toml benchmarks/suites/nus.toml; run "non-UTF-8 suite (bench list)" $M bench list; grep nus out.txt; rm -r benchmarks
j() { python3 - "$1" <<'PY'
import json,sys
d=json.load(open("inst.json")); exec(sys.argv[1]); open("m.json","w").write(json.dumps(d))
PY
}
j 'd["blocks"]["llm"]["layers"]["value"]=33'; run "instance layers.value changed" $M solve --instance m.json --solver greedy
j 'd["blocks"]["llm"]["layers"]["value"]=float("nan")'; run "instance layers.value NaN" $M solve --instance m.json --solver greedy
j 'd["blocks"]["uplink"]["p_max_W"]["values"][0]=True'; run "bool in numeric array" $M solve --instance m.json --solver greedy
j 'd["blocks"]["uplink"]["p_max_W"]["values"][0]="1.5"'; run "string in numeric array" $M solve --instance m.json --solver greedy
j 'd["comment"]=float("inf")'; run "inf in ignored field" $M solve --instance m.json --solver greedy
r() { python3 - "$1" <<'PY'
import json,sys
d=json.load(open("greedy.json")); exec(sys.argv[1]); open("r.json","w").write(json.dumps(d))
PY
}
r 'd["status"]="optimal"; d["bound"]=float("nan")'; run "check: optimal + bound NaN" $M check --instance inst.json r.json
r 'd["status"]="optimal"'; run "check: heuristic claims optimal" $M check --instance inst.json r.json
r 'd["status"]="optimal"; d["bound"]=d["objective"]'; run "check: heuristic optimal + bound=obj" $M check --instance inst.json r.json
r 'd["bound"]="abc"'; run "check: string bound" $M check --instance inst.json r.json
printf '[variant]\nextends = "default"\n[objective]\nweights = {delay = 1e-7, energy = 1e-7, stability = 1e-7}\n' > tiny.toml
$M instance --variant tiny.toml --users 4 --servers 2 --seed 1 -o tinst.json >/dev/null 2>&1
$M solve --variant tiny.toml --instance tinst.json --solver greedy -o tres.json >/dev/null 2>&1
run "check tiny: original" $M check --variant tiny.toml --instance tinst.json tres.json; grep -i objective out.txt | head -2
for e in '0.0' '-o' 'o/2'; do python3 -c "
import json; d=json.load(open('tres.json')); o=d['objective']; d['objective']=eval('$e'); json.dump(d,open('tw.json','w'))"; run "check tiny: objective $e" $M check --variant tiny.toml --instance tinst.json tw.json; done
for t in /etc/shadow /etc/passwd notvariant; do printf '[variant]\nextends = "%s"\n' $t > e.toml; run "extends = $t" $M variants --show e.toml; done
s '' ; sed -i 's#variants = \["default"\]#variants = ["../../etc/passwd"]#' s.toml; run "suite variants ../../etc/passwd" $M bench run s.toml --db s.sqlite --out rep --no-progress
s '' ; sed -i 's#variants = \["default"\]#variants = ["notvariant.toml"]#' s.toml; run "suite variants notvariant.toml" $M bench run s.toml --db s.sqlite --out rep --no-progress
s '' ; sed -i '1i name = ".."' s.toml; mkdir -p outer/inner; run "suite named .." $M bench run s.toml --db s.sqlite --out outer/inner --no-progress; ls outer
L=$(printf 'x%.0s' $(seq 5000))
run "--instance NAME_TOO_LONG" $M solve --instance $L --solver greedy
run "bench report --db NAME_TOO_LONG" $M bench report --db $L
run "-o /dev/full" $M instance --users 2 --servers 1 -o /dev/full
v '[[constraints]]\nname = "c"\nfor_each = "user"\nexpr = "delay_s <= 1/0 * delay_s"\n'; run "constant 1/0 in a constraint" $M variants --show v.toml
