_npuenv_rest=${NPUENV_PATH-} _npuenv_front=
while [ -n "$_npuenv_rest" ]; do
  _npuenv_dir=${_npuenv_rest%%:*}
  case $_npuenv_rest in *:*) _npuenv_rest=${_npuenv_rest#*:} ;; *) _npuenv_rest= ;; esac
  case ":$PATH:" in *":$_npuenv_dir:"*) ;; *) _npuenv_front=${_npuenv_front:+$_npuenv_front:}$_npuenv_dir ;; esac
done
if [ -n "$_npuenv_front" ]; then export PATH="$_npuenv_front${PATH:+:$PATH}"; fi
unset _npuenv_rest _npuenv_front _npuenv_dir
