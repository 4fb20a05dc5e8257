#!/bin/sh
# A scripted BusyBox session compared with Linux's output (tests/guest/applets/expected.txt).
# Deterministic output only: no dates, pids, timings, /proc or /sys.
export TZ=UTC LC_ALL=C PATH=/bin:/sbin:/usr/bin:/usr/sbin
D=/tmp/s; rm -rf $D; mkdir -p $D; cd $D || exit 1
printf 'pear 3\napple 10\nfig 2\napple 10\nbanana 7\n' > fruit
printf 'one\ntwo\nthree\nfour\nfive\nsix\n' > lines
echo "== echo"; echo -n "a"; echo " b"; echo -e 'x\ty'
echo "== printf"; printf '%s=%d %05.1f %x %o %c\n' k 42 3.14159 255 8 Z
echo "== cat"; cat -n lines | head -n 2
echo "== head"; head -n 2 lines; head -c 5 lines; echo
echo "== tail"; tail -n 2 lines; tail -n +5 lines
echo "== sort"; sort -k2,2n -k1,1 fruit; sort -r -u fruit
echo "== uniq"; sort fruit | uniq -c | sed 's/^ *//'; sort fruit | uniq -d
echo "== wc"; wc -l < lines; wc -w < fruit; wc -c < lines
echo "== tr"; echo hello | tr a-z A-Z; echo 'a  b   c' | tr -s ' '; echo abc123 | tr -d 0-9
echo "== cut"; cut -d' ' -f2 fruit | head -n 3; echo abcdef | cut -c2-4
echo "== sed"; sed -n '2,3p' lines; sed 's/o/0/g;/six/d' lines | tail -n 2; sed -e '1i\
top' -e '$a\
bottom' lines | sed -n '1p;$p'
echo "== awk"; awk '{s+=$2} END {print "total", s}' fruit; awk -F' ' '$2>5 {printf "%s:%d\n", $1, $2*2}' fruit
echo "== grep"; grep -n apple fruit; grep -c -v apple fruit; grep -E '^(f|b)' fruit; grep -i -w PEAR fruit
echo "== egrep"; egrep 'x|v' lines
echo "== fgrep"; fgrep -x six lines
echo "== mkdir"; mkdir -p a/b/c && echo ok; mkdir a 2>/dev/null || echo exists
echo "== touch"; touch a/f1 a/b/f2 a/b/c/f3; echo done
echo "== ls"; ls a; ls -1 a/b; ls -d a
echo "== find"; find a | sort; find a -type f -name 'f*' | sort; find a -type d -mindepth 1 | sort
echo "== cp"; cp fruit fruit2; cp -r a a2; find a2 | sort
echo "== mv"; mv fruit2 fruit3; ls fruit*
echo "== rm"; rm -r a2; rm fruit3; ls
echo "== ln"; ln -s lines sl; ln lines hl; ls -l sl | sed 's/.* sl/sl/'
echo "== readlink"; readlink sl
echo "== realpath"; realpath sl
echo "== basename"; basename /a/b/c.txt .txt
echo "== dirname"; dirname /a/b/c.txt
echo "== chmod"; chmod 640 lines; stat -c '%a %n' lines; chmod u+x,o+r lines; stat -c '%a' lines
echo "== stat"; stat -c '%s %F' fruit; stat -c '%h' lines
echo "== truncate"; cp lines t; truncate -s 4 t; cat t; echo
echo "== dd"; dd if=lines of=dd.out bs=4 count=2 2>/dev/null; cat dd.out; echo
echo "== cmp"; cmp lines lines && echo same; cmp lines fruit >/dev/null || echo differ
echo "== diff"; printf 'a\nb\nc\n' > d1; printf 'a\nB\nc\n' > d2; diff d1 d2 | grep '^[<>]'
echo "== paste"; paste -d, d1 d2
echo "== nl"; nl -b a d1 | sed 's/^ *//'
echo "== rev"; echo abc | rev
echo "== tac"; tac d1
echo "== fold"; echo abcdefghij | fold -w 4
echo "== expand"; printf 'a\tb\n' | expand -t 4
echo "== od"; printf 'AB' | od -An -tx1 | tr -s ' '
echo "== hexdump"; printf 'AB\n' | hexdump -C | head -n 1
echo "== xxd"; printf 'hi' | xxd -p
echo "== md5sum"; md5sum lines | cut -d' ' -f1
echo "== sha1sum"; sha1sum lines | cut -d' ' -f1
echo "== sha256sum"; sha256sum fruit | cut -d' ' -f1
echo "== base64"; echo hello | base64; echo aGVsbG8K | base64 -d
echo "== gzip"; cp lines g; gzip -9 g; ls g*; gzip -t g.gz && echo ok
echo "== gunzip"; gunzip g.gz; cat g | wc -l
echo "== zcat"; gzip -c lines > z.gz; zcat z.gz | head -n 1
echo "== bzip2"; bzip2 -c lines > b.bz2; bzip2 -dc b.bz2 | tail -n 1
echo "== tar"; tar -cf t.tar a d1; tar -tf t.tar | sort; mkdir x; tar -xf t.tar -C x; find x | sort
echo "== cpio"; find a | sort | cpio -o -H newc 2>/dev/null > a.cpio; cpio -t < a.cpio 2>/dev/null
echo "== seq"; seq 3; seq -s, 2 2 8
echo "== expr"; expr 6 \* 7; expr length hello; expr 10 % 3
echo "== test"; test 3 -gt 2 && echo gt; [ -f lines ] && echo file; [ -z "" ] && echo empty
echo "== true"; true && echo t
echo "== false"; false || echo f
echo "== yes"; yes y | head -n 3
echo "== env"; env -i A=1 B=2 env | sort
echo "== xargs"; printf '1\n2\n3\n' | xargs echo n; printf 'a b c' | xargs -n 1 echo
echo "== tee"; echo teed | tee tee.out >/dev/null; cat tee.out
echo "== sleep"; sleep 0 && echo slept
echo "== date"; date -u -d @0 '+%Y-%m-%d %H:%M:%S'
echo "== which"; which sh | sed 's|.*/||'
echo "== id"; id -u; id -g
echo "== mktemp"; f=$(mktemp -p /tmp/s tmp.XXXXXX); [ -f "$f" ] && echo made
echo "== unexpand"; echo '        x' | unexpand -a | od -An -c | tr -s ' '
echo "== dos2unix"; printf 'a\r\nb\r\n' > dos; dos2unix dos; od -An -c dos | tr -s ' '
echo "== sh"
sh -c 'echo "args: $# $1 $2"' x p q
( cd /; pwd ); pwd
echo pipe | cat | cat | tr p P
{ echo out; echo err >&2; } 2>&1 >/dev/null | sed 's/^/got /'
echo redir > r1; echo more >> r1; cat < r1
cat <<END
here $((2 + 3)) ${UNSET_VAR:-dflt}
END
cat <<'END'
quoted $x
END
x=$(echo sub); echo "x=$x"
i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo i=$i
case foo.c in *.c) echo c-file;; *) echo other;; esac
f() { echo "fn $1"; return 4; }; f arg; echo rc=$?
set -- a b c; shift; echo "$@"
echo "== kill"
sh -c 'sleep 10 & p=$!; kill $p; wait $p; echo "status=$?"' 2>/dev/null
( sleep 0; exit 5 ) & wait $!; echo "bg=$?"
echo "== trap"
sh -c 'trap "echo caught USR1" USR1; kill -USR1 $$; echo after'
sh -c 'trap "echo bye" EXIT; echo body'
echo SESSION-END
