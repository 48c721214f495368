"""One folder per person on the shared ma-user account: ROOT/NAME, with an init.sh that is the login entry.

Everyone logs in as ma-user and only /home/ma-user/work survives a restart, so each person gets ROOT/NAME
as HOME, with the XDG folders, caches, tmp and the CA bundle inside it, and an init.sh that sets all of
that up and starts their shell (the SSH RemoteCommand, the VS Code terminal profile). Nothing here prints;
the tasks render.

    names    a person's name, ROOT, and the paths inside ROOT/NAME (UserPaths)
    files    writing inside a person's folder: symlink guards, atomic writes, backups
    initsh   init.sh and the shells' startup files (templates in shell/), reading and running init.sh
    add      user.add: make or update a person's folder; the shared uv
    folders  finding people's folders and what their init.sh is (user.list)
    show     user.show: the SSH config block and VS Code settings to paste on your own computer
    jsonc    a JSONC reader and editor that keeps comments (for settings.json)
    vscode   user.vscode: the terminal profile, merged into a folder's .vscode/settings.json
    checks   user.check: the doctor's isolation checks, run on the environment NAME's init.sh gives
"""
